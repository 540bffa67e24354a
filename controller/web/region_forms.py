"""The Region page's forms as the services' values: text fields as typed, blanks as "not given" (or null
where the API takes null), checkboxes as booleans, a holiday's calendar as its city, a menu's options one
per line. The services then check them as the API does, so an error names the same field
(`centres.capacity`, `menus.options.2.targets[0]`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from controller.services import menus, region, region_view
from controller.services.errors import FieldError

# The fields each form sends (in the API's names, but `calendar` for a holiday's city and `service`/`city`
# for a menu's); anything else in a form (csrf, ...) is not a value.
FIELDS = {
    "services": ("number", "name", "closed_on_holidays"),
    "cities": ("name", "zone"),
    "centres": ("code", "name", "number", "capacity", "ring_timeout_s"),
    "deny-prefixes": ("prefix", "note"),
    "holidays": ("calendar", "date"),
    "menus": ("name", "service_id", "city_id", "prompt", "default_option", "options", "timeout_s", "tries"),
}
KINDS = tuple(FIELDS)
NULL_WHEN_BLANK = {"capacity", "city_id"}  # no cap; every city
MAX_OPTION_LINES = 12


def _text(data: dict[str, str], name: str) -> str:
    return data.get(name, "").strip()


def region_values(s: Session, kind: str, data: dict[str, str]) -> dict:
    """A region form's values for controller.services.region (which validates them)."""
    out: dict = {}
    for name in FIELDS[kind]:
        if name == "closed_on_holidays":
            out[name] = data.get(name, "0") in ("on", "1", "true")
        elif name == "calendar":
            out["city_id"] = region_view.calendar_city(s, _text(data, name))
        elif name in data:
            value = _text(data, name)
            if value == "" and name in NULL_WHEN_BLANK:
                out[name] = None
            elif value != "" or name in ("name", "note"):
                out[name] = value
    return out


def _whole(data: dict[str, str], name: str, low: int, high: int, default: int | None = None) -> int | None:
    text = _text(data, name)
    if text == "" and default is not None:
        return default
    if text == "" and name == "city_id":
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and low <= int(text) <= high):
        raise FieldError(f"menus.{name}", f"must be a whole number from {low} to {high}")
    return int(text)


def _options(text: str) -> dict:
    """`KEY=CENTRE[,CENTRE...][:LABEL]` per line (as `citygate menu add --option`)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not 1 <= len(lines) <= MAX_OPTION_LINES:
        raise FieldError("menus.options", f"1 to {MAX_OPTION_LINES} lines of KEY=CENTRE[,CENTRE...][:LABEL]")
    out: dict = {}
    for line in lines:
        key, sep, rest = line.partition("=")
        targets, _, label = rest.partition(":")
        codes = [c.strip() for c in targets.split(",") if c.strip()]
        key = key.strip()
        if not sep or not key or not codes:
            raise FieldError("menus.options", f"{line[:80]!r} is not KEY=CENTRE[,CENTRE...][:LABEL]")
        if key in out:
            raise FieldError(f"menus.options.{key[:8]}", "the key is given twice")
        out[key] = {"label": label.strip(), "targets": codes, "strategy": "sequential"}
    return out


def menu_values(data: dict[str, str]) -> dict:
    """A menu form's values for controller.services.menus (which checks the rest, naming the field)."""
    key = _text(data, "default_option")
    if len(key) != 1 or key not in "0123456789*#":
        raise FieldError("menus.default_option", "must be one key: 0-9, * or #")
    return {"name": _text(data, "name"), "service_id": _whole(data, "service_id", 1, 2**31 - 1),
            "city_id": _whole(data, "city_id", 1, 2**31 - 1), "prompt": _prompt(data),
            "timeout_s": _whole(data, "timeout_s", 1, 60, 8), "tries": _whole(data, "tries", 1, 5, 2),
            "default_option": key, "options": _options(data.get("options", ""))}


def _prompt(data: dict[str, str]) -> str:
    prompt = _text(data, "prompt")
    if not 1 <= len(prompt) <= 64:
        raise FieldError("menus.prompt", "1 to 64 characters: an audio file on the module or a TTS text id")
    return prompt


def save(s: Session, kind: str, row_id: int | None, data: dict[str, str]) -> str:
    """Add (row_id None) or change a row from its form; returns what the flash says."""
    if kind == "menus":
        values = menu_values(data)
        if row_id is not None:  # the form has no strategy or fallback: a key that stays keeps its own
            old = menus.get_menu(s, row_id).options or {}
            for key, option in values["options"].items():
                kept = old.get(key) if isinstance(old.get(key), dict) else {}
                option["strategy"] = kept.get("strategy", "sequential")
                if kept.get("fallback") is not None:
                    option["fallback"] = kept["fallback"]
        m = menus.create_menu(s, values) if row_id is None else menus.update_menu(s, row_id, values)
        return f"menu {m.name} {'added' if row_id is None else 'saved'}; its gateways are compiled"
    values = region_values(s, kind, data)
    obj = region.create(s, kind, values) if row_id is None else region.update(s, kind, row_id, values)
    return f"{describe(kind, obj)} {'added' if row_id is None else 'saved'}"


def remove(s: Session, kind: str, row_id: int) -> str:
    if kind == "menus":
        name = menus.get_menu(s, row_id).name
        menus.delete_menu(s, row_id)
        return f"menu {name} removed"
    what = describe(kind, region.get(s, kind, row_id))
    region.delete(s, kind, row_id)
    return f"{what} removed"


def describe(kind: str, obj) -> str:
    return {"services": lambda o: f"service {o.number}", "cities": lambda o: f"city {o.name}",
            "centres": lambda o: f"centre {o.code}", "deny-prefixes": lambda o: f"deny prefix {o.prefix}",
            "holidays": lambda o: f"holiday {o.date}"}[kind](obj)
