"""Word lists and string tables of the synthetic web (languages, TLDs, anchors, snippets).

Pure data plus deterministic table builders; the generator (`model.py`) indexes into them.
"""

from __future__ import annotations

import numpy as np

# TLD, weight, language, share of hosts on a non-UTF-8 encoding, that encoding.
TLDS: tuple[tuple[str, float, str, float, str], ...] = (
    ("com", 30.0, "en", 0.0, "utf-8"),
    ("org", 8.0, "en", 0.0, "utf-8"),
    ("net", 7.0, "en", 0.0, "utf-8"),
    ("io", 5.0, "en", 0.0, "utf-8"),
    ("edu", 3.0, "en", 0.0, "utf-8"),
    ("gov", 2.0, "en", 0.0, "utf-8"),
    ("co.uk", 6.0, "en", 0.0, "utf-8"),
    ("com.au", 4.0, "en", 0.0, "utf-8"),
    ("de", 8.0, "de", 0.4, "windows-1252"),
    ("fr", 5.0, "fr", 0.0, "utf-8"),
    ("ru", 6.0, "ru", 0.6, "windows-1251"),
    ("jp", 5.0, "ja", 0.5, "shift_jis"),
    ("xyz", 3.0, "en", 0.0, "utf-8"),
    ("top", 3.0, "en", 0.0, "utf-8"),
)
RISKY_TLDS = ("xyz", "top")

LANGS = ("en", "de", "fr", "ru", "ja")
# The `lang` attribute as written on <html>; truth keeps the lowercase primary subtag.
LANG_TAGS: dict[str, tuple[str, ...]] = {
    "en": ("en", "en-US", "en-GB", "EN"),
    "de": ("de", "de-DE", "DE-de"),
    "fr": ("fr", "fr-FR"),
    "ru": ("ru", "ru-RU"),
    "ja": ("ja", "ja-JP"),
}
# Labels a page may use to declare its charset; all map to the WHATWG name in the key.
CHARSET_LABELS: dict[str, tuple[str, ...]] = {
    "utf-8": ("utf-8", "UTF-8"),
    "windows-1251": ("windows-1251", "cp1251"),
    "windows-1252": ("windows-1252", "iso-8859-1"),
    "shift_jis": ("Shift_JIS", "sjis"),
}

SUBDOMAINS = ("www", "blog", "shop", "docs", "news", "forum")

SYLLABLES = (
    "ka", "lo", "mi", "ra", "ten", "vo", "lix", "dor", "pa", "sen", "tur", "qui", "ban", "zel",
    "mar", "nos", "fi", "gra", "hel", "jun", "kor", "lum", "nex", "ori", "pol", "ruv", "sta",
    "tor", "ul", "ven", "wex", "yar", "zo", "bel", "cor", "dex", "fen", "gil", "hap", "ist",
)

# Unicode host labels (IDN); their key is the punycode form.
IDN_LABELS: dict[str, tuple[str, ...]] = {
    "de": ("bücher", "müller-shop", "größe", "küche-welt"),
    "fr": ("café-paris", "élan", "crème-brûlée"),
    "ru": ("пример", "новости", "книга"),
    "ja": ("日本語", "例え"),
    "en": ("naïve-blog",),
}

WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "garden", "river", "market", "travel", "recipe", "guide", "review", "notes", "simple",
        "modern", "green", "energy", "local", "history", "school", "health", "coffee", "design",
        "city", "music", "photo", "winter", "summer", "budget", "home", "repair", "bike",
        "science", "data", "open", "free", "daily", "best", "quick", "small", "team", "world",
        "paper", "light", "stone", "field", "north", "south", "bridge", "window", "story",
    ),
    "de": (
        "garten", "fluss", "markt", "reise", "rezept", "ratgeber", "prüfung", "küche", "größe",
        "straße", "bücher", "schön", "grün", "energie", "geschichte", "schule", "gesundheit",
        "kaffee", "stadt", "musik", "winter", "sommer", "preis", "€", "fahrrad", "wissen",
        "daten", "offen", "täglich", "klein", "mannschaft", "welt", "papier", "licht", "über",
    ),
    "fr": (
        "jardin", "rivière", "marché", "voyage", "recette", "guide", "avis", "café", "été",
        "hiver", "énergie", "histoire", "école", "santé", "ville", "musique", "photo", "prix",
        "vélo", "données", "ouvert", "libre", "quotidien", "équipe", "monde", "lumière", "pierre",
        "forêt", "château", "élève", "fenêtre", "très", "déjà",
    ),
    "ru": (
        "сад", "река", "рынок", "путешествие", "рецепт", "обзор", "заметки", "простой",
        "новый", "зелёный", "энергия", "история", "школа", "здоровье", "кофе", "город",
        "музыка", "зима", "лето", "цена", "дом", "ремонт", "наука", "данные", "мир", "свет",
        "камень", "поле", "север", "мост", "окно", "книга", "«лучший»", "ёлка",
    ),
    "ja": (
        "にわ", "かわ", "いちば", "りょこう", "レシピ", "ガイド", "レビュー", "メモ", "かんたん",
        "あたらしい", "みどり", "エネルギー", "れきし", "がっこう", "けんこう", "コーヒー",
        "まち", "おんがく", "ふゆ", "なつ", "ねだん", "いえ", "しゅうり", "かがく", "データ",
        "せかい", "ひかり", "いし", "はし", "まど", "ものがたり", "日本", "東京", "大学", "新聞",
    ),
}

NAV_LABELS: dict[str, tuple[str, ...]] = {
    "en": ("Home", "Blog", "News", "Shop", "Docs", "About us", "Contact", "Archive"),
    "de": ("Startseite", "Blog", "Aktuelles", "Laden", "Hilfe", "Über uns", "Kontakt", "Archiv"),
    "fr": ("Accueil", "Blog", "Actualités", "Boutique", "Docs", "À propos", "Contact",
           "Archives"),
    "ru": ("Главная", "Блог", "Новости", "Магазин", "Справка", "О нас", "Контакты", "Архив"),
    "ja": ("ホーム", "ブログ", "ニュース", "ショップ", "ヘルプ", "会社概要", "お問い合わせ",
           "アーカイブ"),
}

GENERIC_ANCHORS: dict[str, tuple[str, ...]] = {
    "en": ("click here", "read more", "this article", "here", "source", "the website"),
    "de": ("hier klicken", "weiterlesen", "dieser Artikel", "hier", "Quelle"),
    "fr": ("cliquez ici", "lire la suite", "cet article", "ici", "source"),
    "ru": ("нажмите здесь", "читать далее", "эта статья", "здесь", "источник"),
    "ja": ("こちら", "続きを読む", "この記事", "ここ", "出典"),
}

# Exact-match anchors a link farm repeats towards its money site.
FARM_ANCHORS = (
    "best payday loans", "cheap payday loans online", "payday loans fast", "instant loans",
    "best online casino", "casino bonus no deposit",
)

SECTIONS = ("blog", "news", "docs", "shop", "articles", "guides", "forum", "p")
SECTION_PCT = {s: s[:-1] + "%" + format(ord(s[-1]), "02x") for s in SECTIONS}


def word_sep(lang: str) -> str:
    """Separator between words: Japanese text is written without spaces."""
    return "" if lang == "ja" else " "


def make_phrases(rng: np.random.Generator, lang: str, n: int) -> list[str]:
    """`n` distinct lowercase 2-4 word phrases in `lang` (anchors and alts)."""
    words = WORDS[lang]
    sep = word_sep(lang)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = int(rng.integers(2, 5))
        idx = rng.integers(0, len(words), size=k)
        p = sep.join(words[i] for i in idx)
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def make_snippets(rng: np.random.Generator, lang: str, n: int) -> list[str]:
    """`n` short sentences (< 90 chars) used as text before/after links."""
    words = WORDS[lang]
    sep = word_sep(lang)
    out: list[str] = []
    for _ in range(n):
        k = int(rng.integers(3, 10))
        idx = rng.integers(0, len(words), size=k)
        s = sep.join(words[i] for i in idx)
        s = (s[0].upper() + s[1:])[:88].strip()
        out.append(s + ("。" if lang == "ja" else "."))
    return out


def make_paragraphs(rng: np.random.Generator, lang: str, n: int, words_each: int) -> list[str]:
    """`n` long link-free paragraphs (page body filler)."""
    words = WORDS[lang]
    sep = word_sep(lang)
    out: list[str] = []
    for _ in range(n):
        idx = rng.integers(0, len(words), size=words_each)
        out.append(sep.join(words[i] for i in idx))
    return out


def syllable_name(rng: np.random.Generator) -> str:
    """A pronounceable ASCII label such as 'tarvolix'."""
    k = int(rng.integers(2, 4))
    return "".join(SYLLABLES[int(i)] for i in rng.integers(0, len(SYLLABLES), size=k))


def to_ascii_host(unicode_host: str) -> str:
    """IDNA (punycode) form of a lowercase unicode host, label by label.

    Computed here with the punycode codec on purpose, so the world checks
    `urls.normalize_url` instead of echoing it.
    """
    labels = []
    for label in unicode_host.split("."):
        if label.isascii():
            labels.append(label)
        else:
            labels.append("xn--" + label.encode("punycode").decode("ascii"))
    return ".".join(labels)
