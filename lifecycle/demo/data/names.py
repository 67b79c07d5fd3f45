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

CLASS_OF = {
    **dict.fromkeys(("物理", "化学", "数学", "气象", "地理", "心理", "海洋", "地质", "光学", "统计"),
                    "理科"),
    **dict.fromkeys(("计算机", "机械工程", "电子", "土木建筑", "水利", "汽车工程", "航空", "测绘地理信息",
                     "自动化", "人工智能", "通信", "材料研究", "能源研究", "金属", "纺织工程"), "工科"),
    **dict.fromkeys(("农学", "林学", "植物保护", "畜牧兽医", "生态"), "农科"),
    **dict.fromkeys(("生物医学工程", "营养", "药学", "中医药", "医学", "预防医学", "护理"), "医科"),
    **dict.fromkeys(("环境科学", "科技史", "科普作家"), "交叉综合"),
}
"""Discipline -> the class of society (理科, 工科, 农科, 医科, 交叉综合) its society belongs to."""

PROJECT_CLASSES = [
    {"id": "理科", "name_en": "Sciences", "budget": 600_000},
    {"id": "工科", "name_en": "Engineering", "budget": 1_000_000,
     "categories": {"academic": 300_000}},
    {"id": "农科", "name_en": "Agriculture", "budget": 400_000},
    {"id": "医科", "name_en": "Medicine", "budget": 600_000},
    {"id": "交叉综合", "name_en": "Interdisciplinary", "budget": 400_000},
]
"""The demo's project calls: the 3,000,000 budget divided by class (工科 with its own academic
budget), ranked within each class."""

STAR_CLASSES = [
    {"id": "理科", "name_en": "Sciences", "reward_share": 20},
    {"id": "工科", "name_en": "Engineering", "reward_share": 35},
    {"id": "农科", "name_en": "Agriculture", "reward_share": 15,
     "thresholds": {5: 880, 4: 780, 3: 680, 2: 580, 1: 480}},
    {"id": "医科", "name_en": "Medicine", "reward_share": 20,
     "maxima": {"IN1": 80, "IN2": 60, "SG5": 90}},
    {"id": "交叉综合", "name_en": "Interdisciplinary", "reward_share": 10,
     "maxima": {"SG5": 80, "SG4": 15, "SW4": 15}},
]
"""The demo's star calls: the reward pool shared by class; 农科 with lower thresholds, 医科 and
交叉综合 with their own maxima (more on popularisation of science, less on standards or
certification), each still adding up to 1,000."""

SUPPORT = [
    {"id": "excellent", "earned_by": "grade", "grades": ["优秀"], "within_calls": 1, "bonus": 3,
     "continue_without_competing": True},
    {"id": "four-stars", "earned_by": "star", "min_level": 4, "extra_declarations": 1},
]
"""The demo's project calls: a 优秀 final grade in the last call earns 3 points and lets its
continuation go without competing; a star of four or more allows a second declaration in a
category."""

MODEL_RULES = {"validity_years": 2, "rules": [
    {"min_level": 5, "in_a_row": 3},
    {"min_level": 4, "in_a_row": 3, "clean_years": 3}]}
"""The demo's star calls: a model society (示范学会) holds five stars three calls in a row, or four
with no failed project in three years: the first can be named in the third year."""

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
