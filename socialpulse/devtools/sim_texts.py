"""Mention texts for the simulator, by language and tone, and which languages each platform's
audience writes in."""

from __future__ import annotations

TEXTS: dict[str, dict[str, list[str]]] = {
    "en": {
        "positive": [
            "Loving the new {product} from {brand}! 😍",
            "{brand} support fixed my issue in minutes, great service 👏",
            "Best {product} I've had this year. Thank you {brand}!",
            "{brand} just made my morning ☀️ so good",
            "Huge fan of what {brand} is doing lately 🙌",
        ],
        "neutral": [
            "Has anyone tried the {product} from {brand}?",
            "{brand} announced a new {product} today",
            "Where can I buy {brand} {product} in Berlin?",
            "{brand} store opens at 9 tomorrow",
            "Comparing {brand} and others for {product}",
        ],
        "negative": [
            "{brand} charged me twice and support is ignoring me. Terrible 😡",
            "Worst {product} ever, {brand} you should be ashamed",
            "Never buying from {brand} again. Awful service 👎",
            "{brand} app crashed again, this is ridiculous and frustrating",
            "My {product} from {brand} arrived broken. Disappointed and angry",
        ],
    },
    "de": {
        "positive": ["Das neue {product} von {brand} ist super!", "Danke {brand}, top Service"],
        "neutral": ["Hat jemand das {product} von {brand} getestet?", "{brand} hat heute Neues"],
        "negative": ["{brand} hat doppelt abgebucht, keiner antwortet", "Nie wieder {brand}!"],
    },
    "es": {
        "positive": ["¡Me encanta el nuevo {product} de {brand}!", "Gracias {brand}, genial"],
        "neutral": ["¿Alguien probó el {product} de {brand}?", "{brand} abre mañana a las 9"],
        "negative": ["{brand} me cobró dos veces, pésimo servicio", "Nunca más compro en {brand}"],
    },
    "fr": {
        "positive": ["J'adore le nouveau {product} de {brand} !", "Merci {brand}, au top"],
        "neutral": ["Quelqu'un a testé le {product} de {brand} ?", "{brand} annonce du nouveau"],
        "negative": ["{brand} m'a débité deux fois, honteux", "Plus jamais {brand}, nul"],
    },
    "pt": {
        "positive": ["Amei o novo {product} da {brand}!", "Obrigado {brand}, atendimento ótimo"],
        "neutral": ["Alguém já testou o {product} da {brand}?", "{brand} lançou algo hoje"],
        "negative": ["A {brand} me cobrou duas vezes, péssimo", "Nunca mais compro da {brand}"],
    },
    "ja": {
        "positive": ["{brand}の新しい{product}最高！", "{brand}のサポート神対応でした"],
        "neutral": ["{brand}の{product}使った人いる？", "{brand}が新商品を発表"],
        "negative": ["{brand}に二重請求された、最悪", "{brand}の{product}壊れてた、ひどい"],
    },
    "zh": {
        "positive": [
            "{brand}的新{product}太好用了，强烈推荐！👍",
            "{brand}的服务太棒了，非常满意！",
            "今年最喜欢的{product}，谢谢{brand}",
        ],
        "neutral": [
            "有人用过{brand}的{product}吗？",
            "{brand}今天发布了新的{product}",
            "{brand}的门店明天九点开门",
        ],
        "negative": [
            "{brand}重复扣款，客服一直不回复，太差了",
            "{brand}的{product}质量太差，非常失望",
            "再也不买{brand}了，服务态度恶劣😡",
        ],
    },
}
PRODUCTS = {
    "en": ["latte", "app", "flight", "subscription", "update", "delivery", "headset"],
    "de": ["App", "Update", "Abo", "Headset"],
    "es": ["app", "vuelo", "café", "pedido"],
    "fr": ["appli", "vol", "café", "abonnement"],
    "pt": ["app", "voo", "café", "pedido"],
    "ja": ["アプリ", "ラテ", "ヘッドセット"],
    "zh": ["拿铁", "应用", "耳机", "会员"],
}
CARE_REPLIES = {
    "en": "Sorry to hear that! We have sent you a DM to sort it out.",
    "zh": "抱歉给您带来不便，已私信您处理。",
}
# Who writes on each platform: Chinese platforms in Chinese; the others mostly English.
CHINESE_PLATFORMS = frozenset({"weibo", "wechat", "douyin", "xiaohongshu"})
LANGUAGE_WEIGHTS = {"en": 60, "es": 10, "de": 8, "fr": 8, "pt": 8, "ja": 6}
# In-house scoring reads English (VADER) and Chinese (SnowNLP); for other languages the
# simulated listening tool sends its own label, as real ones do.
SCORED_IN_HOUSE = frozenset({"en", "zh"})


def always_labelled(lang: str, tone: str) -> bool:
    """Whether the simulated source always labels such a mention: languages not scored
    in-house, and neutral Chinese, which SnowNLP (trained on shopping reviews) reads as praise
    or complaint."""
    return lang not in SCORED_IN_HOUSE or (lang == "zh" and tone == "neutral")


def languages(platform: str) -> dict[str, float]:
    """Language -> weight of the mentions written on ``platform``."""
    return {"zh": 1.0} if platform in CHINESE_PLATFORMS else dict(LANGUAGE_WEIGHTS)
