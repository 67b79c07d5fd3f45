"""What a page calls things, in the reader's language.

States, triggers and deadlines are labelled once, beside them in `states/` (a `State`'s label,
a stage's `TRIGGERS` and `DEADLINES`); a reason an application moved or did not is a
`notifications.reasons.Reason`, said in any language. What the portal shows besides, and only
the portal, is labelled here: the trail's acts that are not moves, message kinds, the
statuses of reviews, objections, messages and payments, an application's fields. Every label
is "中文 English", as a state's is.

The engine and the acts write their refusals in English (the command line's words, kept in
the trail); `Words.say` gives a refusal in Chinese on a Chinese page from `MESSAGES`, a
catalogue of the messages the portal's pages can meet, matched whole. A message written in
both languages ("中文 / English") is cut to the reader's half. One no pattern matches is shown
as written (tests/test_portal_words.py walks the pages and fails on it).
"""
from __future__ import annotations

import re
from typing import Any

from lifecycle import kinds
from notifications.reasons import Reason, from_stored, localise
from states import declaration, roles

ACTIONS = {
    "account_2fa_enrol": "启用两步验证 second factor enrolled",
    "account_2fa_reset": "重置两步验证 second factor reset",
    "account_add": "新增账号 account added",
    "account_disable": "停用账号 account disabled",
    "account_invite": "发出账号邀请 account invited",
    "account_invite_accept": "接受邀请 invitation accepted",
    "account_invite_revoke": "撤回账号邀请 invitation revoked",
    "account_password": "设置密码 password set",
    "account_reset_request": "申请重设密码 password reset asked for",
    "account_roles": "更改角色 roles changed",
    "account_sessions_end": "结束登录会话 sessions ended",
    "account_unlock": "解除登录限制 sign-in unlocked",
    "application_import": "导入申报 declarations imported",
    "assessment_report": "提交进展报告 progress report received",
    "assign": "分配评审专家 expert assigned",
    "assign_run": "批量分配评审专家 experts assigned",
    "attachment": "上传附件 file uploaded",
    "audit_anchor": "审计锚定 trail anchored",
    "call_create": "创建批次 call created",
    "call_migrate": "迁移批次流程 call moved to the current workflow",
    "call_pin": "固定批次流程 call pinned to its workflow",
    "consent": "同意个人信息处理规则 agreed to the processing rules",
    "create": "创建草稿 draft created",
    "database_init": "初始化数据库 database initialised",
    "deadline_fired": "时间节点到期执行 deadline fired",
    "declaration_edit": "修改草稿 draft edited",
    "declaration_online": "在线申报 declared online",
    "expert_import": "导入专家 experts imported",
    "grade": "录入考核等级 grade recorded",
    "login": "登录 signed in",
    "migrate": "迁移 migrated",
    "model_named": "命名示范学会 model society named",
    "model_title_revoked": "撤销示范学会称号 model society title revoked",
    "model_title_superseded": "示范学会称号更替 model society title superseded",
    "notice_publish": "发布公示页面 notice page published",
    "notification_discarded": "消息已作废 message discarded",
    "notification_edited": "消息已修改 message edited",
    "notification_failed": "消息发送失败 message failed",
    "notification_held": "消息暂缓发送 message held",
    "notification_released": "消息已放行 message released",
    "notification_requeued": "消息重新排队 message queued again",
    "notification_sent": "消息已发送 message sent",
    "objection_file": "提出异议 objection filed",
    "objection_resolve": "处理异议 objection resolved",
    "panel_decision": "专家组决定 panel decision",
    "payment_cancel": "取消拨款 payment cancelled",
    "payment_cut": "核减拨款 payment cut",
    "payment_export": "导出拨款单 payments exported",
    "payment_paid": "已拨付 payment made",
    "payment_plan": "拨款计划 payment plan",
    "payment_recovered": "追回拨款 payment recovered",
    "payment_release": "分期可拨付 instalment released",
    "person_erase": "删除个人信息 personal data erased",
    "person_export": "导出个人信息 personal data exported",
    "reassign": "改派评审专家 expert reassigned",
    "recuse": "声明回避 recusal",
    "remind": "发送提醒 reminder sent",
    "reminder_skipped": "提醒未发送 reminder skipped",
    "retention_purge": "到期清除个人信息 retention purge",
    "score": "提交评分 scores submitted",
    "score_correct": "更正评分 scores corrected",
    "score_draft": "保存评分草稿 score draft saved",
    "score_import": "导入评分 scores imported",
    "society_import": "导入学会 societies imported",
    "star_award": "授予星级 star awarded",
    "star_check": "星级形式审查 star formal check",
    "star_final_scores": "星级最终得分 star final scores",
    "star_lost": "星级失去 star lost",
    "star_review": "星级评审 star review",
    "star_revoked": "撤销星级 star revoked",
    "star_self_evaluation": "提交自评 self-evaluation filed",
    "star_superseded": "星级更替 star superseded",
    "support": "持续支持 steady support",
    "trail_seal": "封存审计记录 trail sealed",
}
"""The trail's acts besides the moves (a move's action is its trigger, labelled in states/)."""

KINDS = {
    "account_invitation": "账号邀请 account invitation",
    "assessed": "考核结果 assessment result",
    "audit_anchor": "审计锚定 trail anchor",
    "awarded": "立项通知 award",
    "continuation_funded": "延续资助通知 continuation funded",
    "declaration_received": "申报已受理 declaration received",
    "formal_check_failed": "形式审查未通过 formal check failed",
    "formal_check_passed": "形式审查通过 formal check passed",
    "funded": "资助确认 funded",
    "model_named": "示范学会命名 model society named",
    "model_revoked": "示范学会称号撤销 model society title revoked",
    "notice_opened": "公示通知 notice opened",
    "objection_filed": "异议通知 objection filed",
    "outcome_adjusted": "调整资助通知 funding adjusted",
    "outcome_continued": "继续资助通知 funding continued",
    "outcome_terminated": "终止资助通知 funding terminated",
    "password_reset": "重设密码 password reset",
    "rejected": "未获资助通知 not funded",
    "remind_declaration": "申报提醒 declaration reminder",
    "remind_report": "报告提醒 report reminder",
    "remind_review": "评审提醒 review reminder",
    "report_requested": "报告通知 report requested",
    "review_assigned": "评审任务通知 review assigned",
    "sign_in_attempts": "登录异常提醒 sign-in attempts",
    "star_awarded": "星级授予通知 star awarded",
    "star_declared": "自评已受理 self-evaluation received",
    "star_not_rated": "未评定星级通知 not rated",
    "star_notice_opened": "星级公示通知 star notice opened",
    "star_revoked": "星级撤销通知 star revoked",
    "withdrawn": "撤回确认 withdrawn",
}
"""Message kinds (notifications/templates)."""

STATUSES = {
    # an expert's assignment
    "assigned": "待评分 to score", "submitted": "已提交 submitted", "recused": "已回避 recused",
    "reassigned": "已改派 reassigned",
    # an objection
    "pending": "待处理 pending", "upheld": "异议成立 upheld", "dismissed": "已驳回 dismissed",
    # a message
    "sending": "发送中 sending", "sent": "已发送 sent", "failed": "发送失败 failed",
    "held": "暂缓 held", "discarded": "已作废 discarded",
    # a payment, a star, a model society title
    "planned": "计划中 planned", "released": "可拨付 released", "paid": "已拨付 paid",
    "cancelled": "已取消 cancelled", "active": "有效 active", "superseded": "已更替 superseded",
    "lost": "已失去 lost", "revoked": "已撤销 revoked",
}
"""Statuses that are not workflow states (an objection's and a message's `pending` read alike)."""

FIELDS = {**declaration.FIELDS, "kind": "附件类型 kind", "fields": "摘要等内容 summary and further fields"}
"""A declaration's fields (labelled in states/), and the form's kind of file."""

MESSAGES: list[tuple[str, str]] = [
    # signing in, sessions, accounts
    (r"wrong account name or password", "账号或密码错误"),
    (r"too many failed logins from your address: wait 15 minutes and try again",
     "您所在地址登录失败次数过多：请 15 分钟后再试"),
    (r"too many failed logins for this account from your address: try again in (?P<n>\d+) s",
     "该账号从您所在地址登录失败次数过多：请 {n} 秒后再试"),
    (r"the account '(?P<a>[^']+)' was disabled on (?P<d>[\d-]+).*", "账号 {a} 已于 {d} 停用"),
    (r"no sign-in is waiting for its second step: log in again", "没有等待第二步验证的登录：请重新登录"),
    (r"the enrolment form was changed; log in again", "两步验证表单已被改动：请重新登录"),
    (r"(?P<n>\S+) has a password already: .*", "{n} 已设置密码：请直接登录，或在登录页重设密码"),
    (r"an account named '(?P<n>[^']+)' exists already", "账号 {n} 已存在"),
    (r"an invitation needs the person's address \(--email\)", "邀请需要填写对方的邮箱"),
    (r"the account name '(?P<n>[^']+)' looks like an e-mail address or a phone.*",
     "账号名 {n} 像邮箱或电话号码：账号名请用化名"),
    (r"no society '(?P<s>[^']+)'.*", "没有学会 {s}"),
    (r"no expert '(?P<s>[^']+)'.*", "没有专家 {s}"),
    (r"(?P<n>\S+) has no open invitation", "{n} 没有未接受的邀请"),
    (r"(?P<who>\S+) may invite society contacts and experts only.*",
     "{who} 只能邀请学会联系人和评审专家；工作人员账号由审定人员（领导小组）开设"),
    (r"you cannot take the approver role from yourself.*", "不能撤销自己的审定角色（可由另一位审定人员办理）"),
    (r"you cannot disable your own account.*", "不能停用自己的账号（可由另一位审定人员办理）"),
    (r"(?P<n>\S+) has no second factor to reset", "{n} 未启用两步验证，无需重置"),
    (r"this link is not valid any more.*|this link was used just now.*",
     "链接已失效（已使用、已被新链接替代或已过期）：请重新申请"),
    # who may do what
    (r"(?P<who>\S+) \((?P<roles>[^)]*)\) may not fire (?P<t>\S+); it is for (?P<for>.+)",
     "{who}（{roles}）无权执行「{t}」：仅限{for}"),
    (r"(?P<who>\S+) \((?P<roles>[^)]*)\) may not (?P<what>.+) \((?P<act>[a-z_.]+)\); it is for "
     r"(?P<for>.+)", "{who}（{roles}）无权进行此项操作：仅限{for}"),
    (r"(?P<who>\S+) speaks for society (?P<a>\S+), not (?P<b>\S+)",
     "{who} 代表学会 {a}，不能代表 {b}"),
    (r"(?P<who>\S+) is expert (?P<a>\S+), not (?P<b>\S+)", "{who} 是专家 {a}，不是 {b}"),
    # declaring
    (r"the declaration window of (?P<c>\S+) opens at (?P<t>[\d-]+ [\d:]+).*",
     "{c} 的申报尚未开始（{t} 开始）"),
    (r"the declaration window of (?P<c>\S+) closed at (?P<t>[\d-]+ [\d:]+).*",
     "{c} 的申报已于 {t} 截止，草稿不能再修改"),
    (r"category: '(?P<v>[^']*)' is not a category of (?P<c>\S+)", "类别：{v} 不是 {c} 的类别"),
    (r"requested_amount: must be a positive whole number of yuan", "申请金额：应为正整数（元）"),
    (r"(?P<a>\S+) is (?P<s>[a-z_]+): only a draft can change", "{a} 状态为「{s}」：只有草稿可以修改"),
    (r"kind: '(?P<k>[^']*)' is not a file (?P<c>\S+) asks for.*", "附件类型：{c} 不接收「{k}」"),
    (r"title: .*", "项目名称：必须填写，且不超过规定长度"),
    (r"(?P<f>[a-z_]+): (Field required|field required)", "{f}：必须填写"),
    (r"(?P<f>[a-z_]+): Input should be a valid integer.*", "{f}：应为整数"),
    (r"(?P<f>[a-z_]+): Input should be greater than (?P<n>\S+)", "{f}：应大于 {n}"),
    (r"(?P<f>[a-z_]+): String should have at (most|least) (?P<n>\d+) characters?",
     "{f}：长度不符合要求（{n} 个字符）"),
    # files
    (r"(?P<f>.+): the file is empty", "{f}：文件为空"),
    (r"(?P<f>.+): (?P<n>[\d,]+) bytes, more than the (?P<mb>\d+) MB a file may have",
     "{f}：{n} 字节，超过单个文件 {mb} MB 的上限"),
    (r"(?P<f>.+): its content is (?P<t>[A-Z]+); accepted here: (?P<a>.+) \(told by content, not "
     r"by name\)", "{f}：文件内容为 {t} 格式；此处只接收 {a}（按文件内容判断，而非文件名）"),
    (r"(?P<f>.+): its content is not a PDF, Word, Excel or image file; accepted here: (?P<a>.+) "
     r"\(told by content, not by name\)",
     "{f}：文件内容不是 PDF、Word、Excel 或图片；此处只接收 {a}（按文件内容判断，而非文件名）"),
    (r"(?P<f>.+): it would expand to (?P<n>[\d,]+) bytes, more than the (?P<mb>\d+) MB an Office "
     r"file may have \(a decompression bomb\?\); it was not stored",
     "{f}：解压后将达 {n} 字节，超过 Office 文件 {mb} MB 的上限（疑为压缩炸弹），未保存"),
    (r"(?P<f>.+): it holds (?P<n>[\d,]+) parts, more than the (?P<m>[\d,]+) an Office file may "
     r"have; it was not stored", "{f}：包含 {n} 个部件，超过 Office 文件 {m} 个的上限，未保存"),
    (r"(?P<f>.+): it expands to more than (?P<mb>\d+) MB \(a decompression bomb\?\); it was not "
     r"stored", "{f}：解压后超过 {mb} MB（疑为压缩炸弹），未保存"),
    (r"(?P<f>.+): the archive inside it is damaged or encrypted .*; it was not stored",
     "{f}：文件内部的压缩包已损坏或加密，未保存"),
    (r"(?P<f>.+): (?P<n>[\d,]+) bytes, more than the (?P<mb>\d+) MB.*",
     "{f}：{n} 字节，超过 {mb} MB 的上限"),
    # reviewing
    (r"(?P<c>.+): '(?P<v>[^']*)' is not a number", "{c}：「{v}」不是数字"),
    (r"(?P<c>.+) \((?P<id>[a-z_]+)\): (?P<v>\S+) outside 0\.\.(?P<m>\S+)",
     "{c}：{v} 超出 0 至 {m} 的范围"),
    (r"\(expert (?P<e>\S+), (?P<a>\S+)\): (?P<rest>.+)", "（专家 {e}，{a}）：{rest}"),
    (r"scores refused, nothing was recorded:\s*(?P<rest>.+)", "评分未被接受，未记录任何分数：{rest}"),
    (r"(?P<a>\S+) is (?P<s>[a-z_]+); scores are kept only while it is under review.*",
     "{a} 状态为「{s}」：只有评审中的申报才能评分"),
    (r"expert (?P<e>\S+) is not assigned to (?P<a>\S+).*", "专家 {e} 未被分配评审 {a}"),
    (r"a recusal needs a reason.*", "声明回避需要说明理由"),
    (r"(?P<a>\S+) is (?P<s>[a-z_]+); (?P<w>.+) only while it is eligible or under review",
     "{a} 状态为「{s}」：仅在形式审查通过或评审中时可以办理"),
    # objections
    (r"objections must be named: .*", "异议须实名提出：请填写异议人姓名"),
    (r"objections must give a way to reach the objector.*", "异议须留下联系方式"),
    (r"an objection must say what is objected to.*", "异议须写明异议内容"),
    (r"(?P<a>\S+) is (?P<s>[a-z_]+); objections are filed against applications .*",
     "{a} 状态为「{s}」：只能对公示中的项目提出异议"),
    (r"the public notice of (?P<c>\S+) ended at (?P<t>.+)", "{c} 的公示已于 {t} 结束"),
    (r"(?P<p>.+): evidence larger than (?P<mb>\d+) MB", "{p}：证据文件超过 {mb} MB"),
    # progress reports, the star self-evaluation
    (r"(?P<a>\S+) is (?P<s>[a-z_]+), not awaiting a performance report.*",
     "{a} 状态为「{s}」：当前无需提交进展报告"),
    (r"(?P<k>\S+): '(?P<v>[^']*)' is not a number", "{k}：「{v}」不是数字"),
    (r"(?P<who>\S+) speaks for no society", "{who} 不代表任何学会"),
    # moves
    (r"workflow (?P<w>\S+) has no trigger '(?P<t>[^']*)'.*", "该流程没有「{t}」这一步"),
    (r"no application of (?P<c>\S+) can take (?P<t>\S+) now \(it needs state (?P<s>[^)]+)\); "
     r"possible now: (?P<p>.+)", "{c} 目前没有申报可以「{t}」（须处于「{s}」状态）；现可执行：{p}"),
    (r"none \(no application is in a state with moves\)", "无"),
    (r"(?P<t>\S+) refused: (?P<why>.+)", "未能执行：{why}"),
    # the audit trail's filters, paging
    (r"'(?P<v>[^']*)' is not a valid time.*",
     "「{v}」不是有效的时间（应为 2025-04-01 或 2025-04-01T09:00 这样的格式）"),
    # public lists
    (r"(?P<c>\S+) has no public notice yet: .*", "{c} 尚无公示：尚未审定拟资助名单"),
    (r"the public notice of (?P<c>\S+) has not closed: .*", "{c} 的公示尚未结束，立项名单在公示结束后发布"),
    (r"(?P<c>\S+) has awarded nothing yet", "{c} 尚无立项"),
    (r"no (public notice|award list) of (?P<c>\S+)( yet)?", "未找到 {c} 的公示或立项名单"),
]
"""English messages of the engine and the acts a page can show, as Chinese says them (a
message is matched whole; named groups are carried over)."""
_COMPILED = [(re.compile(p, re.S), zh) for p, zh in MESSAGES]
_ENDINGS = (("; refused, nothing was imported", "；未接收，未写入任何内容"),
            ("; nothing was changed", "；未做任何更改"))
"""What an act adds to a refusal, said after the refusal's own words."""


def actions() -> list[str]:
    """Every act the trail can hold: the moves' triggers of every kind, and ACTIONS."""
    triggers = {m.trigger for k in kinds.all_kinds() for m in k.workflow.moves}
    return sorted(triggers | set(ACTIONS))


def _workflows(workflow: str | None):
    if workflow:
        try:
            return [kinds.of(workflow).workflow]
        except kinds.UnknownKind:
            pass
    return [k.workflow for k in kinds.all_kinds()]


def _half(label: str, lang: str) -> str:
    zh, _, en = label.partition(" ")
    return (en or zh) if lang == "en" else zh


class Words:
    """The labels and messages of one page, in its reader's language (`render` gives templates
    one as `w`)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def workflow(self, name: str) -> str:
        try:
            return _half(kinds.of(name).workflow.title, self.lang)
        except kinds.UnknownKind:
            return name

    def state(self, name: str | None, workflow: str | None = None) -> str:
        """A state's label (of `workflow`, else of the first kind that has it)."""
        if not name:
            return ""
        for wf in _workflows(workflow):
            if any(s.name == name for s in wf.states):
                return _half(wf.state(name).label, self.lang)
        return name

    def trigger(self, name: str, workflow: str | None = None) -> str:
        for wf in _workflows(workflow):
            label = wf.trigger_label(name)
            if label != name:
                return _half(label, self.lang)
        return name

    def deadline(self, kind: str, workflow: str | None = None) -> str:
        for wf in _workflows(workflow):
            label = wf.deadline_label(kind)
            if label != kind:
                return _half(label, self.lang)
        return kind

    def action(self, name: str, workflow: str | None = None) -> str:
        """A trail event's act: a move's trigger, or one of ACTIONS."""
        if name in ACTIONS:
            return _half(ACTIONS[name], self.lang)
        return self.trigger(name, workflow)

    def kind(self, name: str) -> str:
        return _half(KINDS[name], self.lang) if name in KINDS else name

    def status(self, name: str | None) -> str:
        if not name:
            return ""
        return _half(STATUSES[name], self.lang) if name in STATUSES else self.state(name)

    def role(self, name: str) -> str:
        found = next((r for r in roles.ROLES if r.name == name), None)
        return _half(found.label, self.lang) if found else name

    def roles(self, names: Any) -> str:
        return ("、" if self.lang == "zh" else ", ").join(self.role(n) for n in names)

    def field(self, name: str, call: Any = None) -> str:
        """An application's field, or one of the call's further fields by its configured name."""
        if name in FIELDS:
            return _half(FIELDS[name], self.lang)
        for f in getattr(getattr(call, "application", None), "fields", None) or ():
            if getattr(f, "id", None) == name:
                return (getattr(f, "name_en", None) or f.name) if self.lang == "en" else f.name
        return name

    def say(self, message: Any) -> str:
        """A message of the engine or an act in the reader's language: a Reason in its own
        words, "中文 / English" cut to one half, an English one from MESSAGES."""
        if isinstance(message, Reason):
            return message.text(self.lang)
        text = str(message)
        if " / " in text and not text.split(" / ", 1)[0].isascii():
            zh, en = text.split(" / ", 1)
            return en if self.lang == "en" else zh
        if self.lang == "en":
            return self._ids_in(text)
        text, tail = text.strip(), ""
        for ending, said in _ENDINGS:
            if text.endswith(ending):
                text, tail = text[:-len(ending)].rstrip(" ;"), said
        for pattern, zh in _COMPILED:
            m = pattern.fullmatch(text)
            if m:
                groups = {k: v or "" for k, v in m.groupdict().items()}
                return zh.format(**{k: self._value(v) for k, v in groups.items()}) + tail
        return str(message)

    def _value(self, value: str) -> str:
        """A value carried into a translated message: states, triggers, fields and roles (one,
        or a list of them) as their labels."""
        if re.fullmatch(r"[a-z_]+(?:(?:, |/)[a-z_]+)*", value):
            sep = ", " if ", " in value else "/"
            return ("、" if self.lang == "zh" else sep).join(self._id(v) for v in value.split(sep))
        if value.startswith("none ("):
            return self.say(value)
        return value

    def _id(self, value: str) -> str:
        """An id as its label: a state, a trigger, a role or a field (else as it is)."""
        for look in (self.state, self.trigger, self.role, self.field):
            shown = look(value)
            if shown != value:
                return shown
        return value

    def _ids_in(self, text: str) -> str:
        """An English message with the ids in it (under_review, close_notice) as their labels."""
        return re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: self._id(m.group(0)), text)

    def reason(self, code: str | None, text: str | None) -> str:
        """An application's decision reason: from its code (`reason_code`) in the reader's
        language, else its text as written."""
        value = from_stored(code, text or "")
        return localise(value, self.lang) if not isinstance(value, str) else self.say(value)
