import re


def slugify(text, sep="-"):
    text = re.sub(r"[^\w\s-]", "", text.lower()).strip()
    return re.sub(r"[\s_-]+", sep, text)


def chunked(items, size):
    if size < 1:
        raise ValueError("size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]


def parse_bool(value):
    return str(value).strip().lower() in {"1", "true", "yes", "on"}
