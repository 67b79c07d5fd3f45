"""Name material for the simulated programme (data, not logic)."""

DISCIPLINES = [
    ("物理", "Physics"), ("化学", "Chemistry"), ("数学", "Mathematics"), ("计算机", "Computer"),
    ("机械工程", "Mechanical Engineering"), ("电子", "Electronics"), ("生物医学工程", "Biomedical Engineering"),
    ("农学", "Agronomy"), ("林学", "Forestry"), ("气象", "Meteorology"), ("地理", "Geography"),
    ("心理", "Psychology"), ("营养", "Nutrition"), ("药学", "Pharmacy"), ("中医药", "Traditional Chinese Medicine"),
    ("环境科学", "Environmental Sciences"), ("土木建筑", "Civil Engineering and Architecture"),
    ("水利", "Hydraulic Engineering"), ("汽车工程", "Automotive Engineering"), ("航空", "Aeronautics"),
    ("海洋", "Oceanography"), ("地质", "Geology"), ("测绘地理信息", "Surveying and Geoinformation"),
    ("自动化", "Automation"), ("人工智能", "Artificial Intelligence"), ("通信", "Communications"),
    ("光学", "Optics"), ("材料研究", "Materials Research"), ("能源研究", "Energy Research"),
    ("生态", "Ecology"), ("植物保护", "Plant Protection"), ("畜牧兽医", "Animal Husbandry and Veterinary"),
    ("医学", "Medicine"), ("预防医学", "Preventive Medicine"), ("护理", "Nursing"),
    ("科技史", "History of Science"), ("科普作家", "Science Writers"), ("统计", "Statistics"),
    ("金属", "Metals"), ("纺织工程", "Textile Engineering"),
]

SURNAMES = [("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"),
            ("杨", "Yang"), ("赵", "Zhao"), ("黄", "Huang"), ("周", "Zhou"), ("吴", "Wu"),
            ("徐", "Xu"), ("孙", "Sun"), ("胡", "Hu"), ("朱", "Zhu"), ("高", "Gao"), ("林", "Lin")]
GIVEN = [("伟", "Wei"), ("芳", "Fang"), ("敏", "Min"), ("静", "Jing"), ("磊", "Lei"),
         ("洋", "Yang"), ("勇", "Yong"), ("军", "Jun"), ("杰", "Jie"), ("娟", "Juan"),
         ("涛", "Tao"), ("明", "Ming"), ("超", "Chao"), ("霞", "Xia"), ("平", "Ping"),
         ("建华", "Jianhua"), ("晓东", "Xiaodong"), ("丽娜", "Lina"), ("志强", "Zhiqiang")]

INSTITUTIONS = ["市大学", "市理工大学", "市师范大学", "市医科大学", "市农业科学院",
                "市第一人民医院", "市环境监测中心", "市科学技术研究院", "市气象局", "市工业设计研究院"]

TITLES = {
    "academic": ("{y}年{d}学术年会暨前沿论坛", "{y} {e} annual meeting and frontier forum"),
    "policy": ("{d}领域服务地方产业发展的软课题研究", "Policy study: {e} serving local industry"),
    "popsci": ("{d}科普进校园进社区系列活动", "{e} popular science in schools and communities"),
    "talent": ("青年{d}科技人才培养与举荐计划", "Young {e} talent development programme"),
    "capacity": ("{d}学会治理与会员服务能力建设", "{e} society governance and member services"),
}
