"""Turning what marketing writes into the message one contact receives.

Two steps, done at two different times:

- :func:`compile_version`, when a template is saved: each language's subject, preheader and body
  (Django template syntax, personal fields like ``{{ contact.first_name|default:"there" }}``) are
  checked — a field Embudo does not know, a tag it does not allow or broken syntax is refused
  with its line — and put into the brand's layout; the CSS is inlined (css-inline), the links
  are numbered and replaced by placeholders, and the plain-text part is made from the HTML
  (html2text). What is stored still holds the personal fields.
- :func:`build_message`, when a delivery is sent: the stored parts are rendered with the
  contact's fields and the delivery's own links (tracked clicks, the open pixel, one-click
  unsubscribe, the preference page), into an ``EmailMultiAlternatives`` ready for any backend.
  Compiled Django templates are cached per (version, language), so a batch renders at thousands
  of messages a second.

The templates run in an engine of their own, which loads no file and no tag library and knows
none of the tags that reach outside the message (``include``, ``url``, ``debug``…).
"""

from __future__ import annotations

import html
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email._policybase import Compat32
from email.utils import formataddr
from typing import Any

import css_inline
import html2text
from cachetools import TTLCache
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine, Library, Template, TemplateSyntaxError
from django.template.base import FilterExpression, Node, NodeList, Variable
from django.template.defaulttags import ForNode, WithNode
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from embudo import caches
from embudo.automation import links
from embudo.automation.models import Brand, Delivery, TemplateVersion
from embudo.errors import ValidationFailed

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"
PARTS = ("subject", "preheader", "body")
#: The longest subject and preheader an author may write (mail programs show far less).
MAX_PART_LENGTHS = {"subject": 255, "preheader": 500}

# What a template may name. ``contact.properties.<name>`` takes any custom contact property
# defined in the CRM (checked at save against the definitions).
CONTACT_FIELDS = frozenset(
    (
        "first_name",
        "last_name",
        "name",
        "email",
        "job_title",
        "phone",
        "language",
        "lifecycle_stage",
    )
)
COMPANY_FIELDS = frozenset(("name", "domain", "industry", "country", "city", "employees"))
OWNER_FIELDS = frozenset(("first_name", "last_name", "name", "email"))
BRAND_FIELDS = frozenset(("name",))
LINK_FIELDS = frozenset(("unsubscribe_url", "preferences_url"))

# Tags that reach outside the message: files, URLs, the whole context, other libraries.
DENIED_TAGS = frozenset(
    ("include", "extends", "block", "load", "url", "debug", "csrf_token", "static", "lorem")
)


def _engine(*, autoescape: bool, debug: bool) -> Engine:
    engine = Engine(
        loaders=[("django.template.loaders.locmem.Loader", {})],
        autoescape=autoescape,
        debug=debug,
        string_if_invalid="",
    )
    allowed = Library()
    for library in engine.template_builtins:
        allowed.tags.update({k: v for k, v in library.tags.items() if k not in DENIED_TAGS})
        allowed.filters.update(library.filters)
    engine.template_builtins = [allowed]
    return engine


# Checking at save wants line numbers (the debug lexer); sending wants speed.
_CHECK_HTML = _engine(autoescape=True, debug=True)
_CHECK_TEXT = _engine(autoescape=False, debug=True)
_HTML = _engine(autoescape=True, debug=False)
_TEXT = _engine(autoescape=False, debug=False)

# Personal fields and tags, kept whole through CSS inlining and the text conversion.
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_LINK = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_TRACKABLE = re.compile(r"^\s*(https?://|\{\{)", re.IGNORECASE)

_INLINER = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


def _text_maker() -> html2text.HTML2Text:
    maker = html2text.HTML2Text()
    maker.body_width = 0
    maker.ignore_images = True
    maker.ignore_emphasis = False
    maker.ignore_tables = True  # the layout's tables are layout, not data
    maker.unicode_snob = True
    return maker


# -- checking what an author wrote ----------------------------------------------------------------


@dataclass(frozen=True)
class Fields:
    """What a template may name beyond the fixed fields: the custom contact properties."""

    properties: frozenset[str]

    @classmethod
    def current(cls) -> Fields:
        from embudo.crm.models import ObjectType, PropertyDefinition

        names = PropertyDefinition.objects.filter(object_type=ObjectType.CONTACT).values_list(
            "name", flat=True
        )
        return cls(frozenset(names))


def _field_problem(lookups: tuple[str, ...], bound: set[str], fields: Fields) -> str | None:
    """Why a variable is not one a message can fill (None: it is)."""
    root, rest = lookups[0], lookups[1:]
    if root in bound or root == "forloop":
        return None
    name = ".".join(lookups)
    unknown = _("unknown field %(name)s") % {"name": name}
    if root in LINK_FIELDS:
        return None if not rest else unknown
    if root == "brand":
        return None if len(rest) == 1 and rest[0] in BRAND_FIELDS else unknown
    if root != "contact":
        return _(
            "unknown field %(name)s (fields start with contact. or brand., or are "
            "unsubscribe_url and preferences_url)"
        ) % {"name": name}
    if not rest:
        return None
    head, tail = rest[0], rest[1:]
    if head in CONTACT_FIELDS and not tail:
        return None
    if head == "company" and (not tail or (len(tail) == 1 and tail[0] in COMPANY_FIELDS)):
        return None
    if head == "owner" and (not tail or (len(tail) == 1 and tail[0] in OWNER_FIELDS)):
        return None
    if head == "properties" and len(tail) == 1:
        if tail[0] in fields.properties:
            return None
        return _("unknown field %(name)s: there is no contact property named %(property)r") % {
            "name": name,
            "property": tail[0],
        }
    return unknown


def _variables(item: Any, line: int) -> Iterator[tuple[Variable, int]]:
    """Every variable a parsed template reads, with the line it is on."""
    if isinstance(item, Variable):
        if item.lookups is not None:
            yield item, line
    elif isinstance(item, FilterExpression):
        yield from _variables(item.var, line)
        for _func, args in item.filters:
            for is_variable, arg in args:
                if is_variable:
                    yield from _variables(arg, line)
    elif isinstance(item, Node):
        token = getattr(item, "token", None)
        line = getattr(token, "lineno", line) or line
        for name, value in vars(item).items():
            if name not in ("token", "origin"):
                yield from _variables(value, line)
    elif isinstance(item, (list, tuple, NodeList)):
        for value in item:
            yield from _variables(value, line)
    elif isinstance(item, dict):
        for value in item.values():
            yield from _variables(value, line)
    elif type(item).__module__ == "django.template.smartif":  # an {% if %} condition
        for name in ("value", "first", "second"):
            if hasattr(item, name):
                yield from _variables(getattr(item, name), line)


def _bound_names(nodelist: NodeList) -> set[str]:
    names: set[str] = set()
    for node in nodelist.get_nodes_by_type(ForNode):
        names.update(node.loopvars)  # type: ignore[attr-defined]
    for node in nodelist.get_nodes_by_type(WithNode):
        names.update(node.extra_context)  # type: ignore[attr-defined]
    return names


def check_source(source: str, *, html_part: bool, fields: Fields) -> list[str]:
    """The problems of one part an author wrote, each naming its line (empty: it renders)."""
    engine = _CHECK_HTML if html_part else _CHECK_TEXT
    try:
        template = engine.from_string(source)
    except TemplateSyntaxError as error:
        debug = getattr(error, "template_debug", None)
        line = debug["line"] if debug else 1
        message = str(error)
        unknown_tag = re.match(r"Invalid block tag on line \d+: '([^']+)'", message)
        if unknown_tag:
            message = _("the tag {%% %(tag)s %%} does not exist or is not allowed") % {
                "tag": unknown_tag.group(1)
            }
        return [_("line %(line)d: %(problem)s") % {"line": line, "problem": message}]
    nodelist = template.nodelist
    bound = _bound_names(nodelist)
    problems = []
    for variable, line in _variables(nodelist, 1):
        problem = _field_problem(tuple(variable.lookups or ()), bound, fields)
        if problem:
            problems.append(_("line %(line)d: %(problem)s") % {"line": line, "problem": problem})
    if not problems:
        problems.extend(_render_problems(template, fields))
    return list(dict.fromkeys(problems))


def _sample_contacts(fields: Fields) -> list[dict[str, Any]]:
    """A contact with every field empty (no company, no owner) and one with every field filled:
    a part that renders for both renders for the contacts in between."""
    filled: dict[str, Any] = {name: "Ana" for name in CONTACT_FIELDS}
    filled["company"] = {name: "Acme" for name in COMPANY_FIELDS} | {"employees": 50}
    filled["owner"] = {name: "Luis" for name in OWNER_FIELDS}
    filled["properties"] = {name: "x" for name in fields.properties}
    return [contact_fields(None), filled]


def _render_problems(template: Template, fields: Fields) -> list[str]:
    """Why a part that parses still fails to render (a filter given a value it cannot take)."""
    for contact in _sample_contacts(fields):
        context = {
            "contact": contact,
            "brand": {"name": "Embudo"},
            "unsubscribe_url": "#",
            "preferences_url": "#",
        }
        try:
            template.render(Context(context))
        except Exception as error:  # any filter's error: the author must see it, not a contact
            debug = getattr(error, "template_debug", None)
            if contact.get("first_name"):
                problem = _("does not render for a contact with every field filled: %(error)s")
            else:
                problem = _("does not render for a contact with no field filled: %(error)s")
            problem %= {"error": error}
            line = debug["line"] if debug else 1
            return [_("line %(line)d: %(problem)s") % {"line": line, "problem": problem}]
    return []


def check_content(content: Mapping[str, Any], fields: Fields | None = None) -> dict[str, Any]:
    """The content as it will be stored (``{"en": {...}, "es": {...}}``, every part a string),
    or :class:`ValidationFailed` naming each bad part (``body_es``…) and its line."""
    fields = fields or Fields.current()
    if not isinstance(content, Mapping):
        raise ValidationFailed.one("content", _("content must map a language to its parts"))
    unknown = set(content) - set(LANGUAGES)
    if unknown:
        raise ValidationFailed.one(
            "content", _("unknown language %(code)r; use en or es") % {"code": sorted(unknown)[0]}
        )
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        parts = content.get(language) or {}
        if not isinstance(parts, Mapping):
            errors[language] = [_("must map subject, preheader and body to text")]
            continue
        values = {part: parts.get(part) or "" for part in PARTS}
        for part, value in values.items():
            if not isinstance(value, str):
                errors[f"{part}_{language}"] = [_("must be text")]
        if any(not isinstance(v, str) for v in values.values()):
            continue
        for part, value in values.items():
            if "\x00" in value:  # PostgreSQL stores no NUL, in text or in JSON
                errors[f"{part}_{language}"] = [_("may not contain a NUL character")]
        if any("\x00" in v for v in values.values()):
            continue
        if not any(v.strip() for v in values.values()):
            continue  # a language left empty: its contacts get English
        if not values["subject"].strip():
            errors[f"subject_{language}"] = [_("a subject is required")]
        if "\n" in values["subject"].strip():
            errors[f"subject_{language}"] = [_("the subject must be one line")]
        if not values["body"].strip():
            errors[f"body_{language}"] = [_("a body is required")]
        for part, limit in MAX_PART_LENGTHS.items():
            if len(values[part].strip()) > limit:
                errors[f"{part}_{language}"] = [_("is longer than %(n)d characters") % {"n": limit}]
        for part, value in values.items():
            problems = check_source(value, html_part=part == "body", fields=fields)
            if problems:
                errors.setdefault(f"{part}_{language}", []).extend(problems)
        cleaned[language] = {part: value.strip() for part, value in values.items()}
    if not errors and DEFAULT_LANGUAGE not in cleaned:
        errors[f"subject_{DEFAULT_LANGUAGE}"] = [
            _("the English version is required: contacts in other languages fall back to it")
        ]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


# -- compiling a version ---------------------------------------------------------------------------


def _protect(source: str) -> tuple[str, list[str]]:
    kept: list[str] = []

    def hide(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"@@EMBUDO{len(kept) - 1}@@"

    return _TEMPLATE_TAG.sub(hide, source), kept


def _restore(text: str, kept: list[str]) -> str:
    return re.sub(r"@@EMBUDO(\d+)@@", lambda m: kept[int(m.group(1))], text)


def _variable(name: str) -> str:
    return "{{ " + name + " }}"


def _escape_text(source: str) -> str:
    """A text part's literal characters made safe for HTML, its personal fields left whole (their
    values are escaped when rendered)."""
    hidden, kept = _protect(source)
    return _restore(html.escape(hidden, quote=False), kept)


def _number_links(body: str) -> tuple[str, list[str]]:
    """The body with each web link's ``href`` replaced by its numbered placeholder, and the
    links as written, in order."""
    found: list[str] = []

    def number(match: re.Match[str]) -> str:
        href = match.group(2) if match.group(2) is not None else match.group(3)
        if not _TRACKABLE.match(href):
            return match.group(0)  # mailto:, tel:, #anchors stay as they are
        found.append(html.unescape(href.strip()))
        return f'{match.group(1)}"{_variable(f"embudo.link{len(found) - 1}")}"'

    return _LINK.sub(number, body), found


def compile_version(content: Mapping[str, Any], brand: Brand | None = None) -> dict[str, Any]:
    """What a version stores as ``compiled``: per language, the subject, the responsive HTML in
    the brand's layout with CSS inlined, the plain-text part and the links it carries (their
    ``href`` as written, numbered as the click links count them). ``content`` must have passed
    :func:`check_content`."""
    brand = brand or current_brand()
    compiled: dict[str, Any] = {}
    for language, parts in content.items():
        body, links_found = _number_links(parts["body"])
        with translation.override(language):
            page = render_to_string(
                "automation/email/layout.html",
                {
                    "brand": brand,
                    "language": language,
                    "preheader": mark_safe(_escape_text(parts["preheader"])),
                    "body": mark_safe(body),
                    "open_url": mark_safe(_variable("embudo.open_url")),
                    "unsubscribe_url": mark_safe(_variable("embudo.unsubscribe_url")),
                    "preferences_url": mark_safe(_variable("embudo.preferences_url")),
                },
            )
        hidden, kept = _protect(page)
        inlined = _INLINER.inline(hidden)
        text = _text_maker().handle(_drop_hidden(inlined)).strip() + "\n"
        compiled[language] = {
            "subject": " ".join(parts["subject"].split()),
            "html": _restore(inlined, kept),
            "text": _restore(text, kept),
            "links": links_found,
        }
    return compiled


_HIDDEN = re.compile(r"<div[^>]*data-embudo-hidden[^>]*>.*?</div>", re.DOTALL)


def _drop_hidden(page: str) -> str:
    """The page without what only mail programs' inbox lines show (the preheader), for text."""
    return _HIDDEN.sub("", page)


# -- rendering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    """One language of a version, parsed once per process."""

    subject: Template
    html: Template
    text: Template
    links: tuple[str, ...]


_COMPILED: dict[tuple[int, str], Compiled] = {}
_COMPILED_LOCK = threading.Lock()
caches.register("email templates", _COMPILED.clear)


def language_for(compiled: Mapping[str, Any], wanted: str | None) -> str:
    """The language a contact gets: theirs if the version (its ``compiled`` parts) has it,
    else English."""
    wanted = (wanted or DEFAULT_LANGUAGE)[:2].lower()
    return wanted if wanted in compiled else DEFAULT_LANGUAGE


def compiled_templates(version: TemplateVersion, language: str) -> Compiled:
    """The version's parts in ``language`` (or English), parsed, cached by version id (a version
    never changes)."""
    language = language_for(version.compiled, language)
    key = (version.pk, language)
    found = _COMPILED.get(key)
    if found is None:
        parts = version.compiled[language]
        found = Compiled(
            _TEXT.from_string(parts["subject"]),
            _HTML.from_string(parts["html"]),
            _TEXT.from_string(parts["text"]),
            tuple(parts.get("links", ())),
        )
        with _COMPILED_LOCK:
            if len(_COMPILED) > 2000:
                _COMPILED.clear()
            _COMPILED[key] = found
    return found


def contact_fields(contact: Any, email: str = "") -> dict[str, Any]:
    """What ``contact.…`` names in a template, for a contact loaded with its company and owner
    (``None``: a contact since erased; only the address is known)."""
    if contact is None:
        return {"email": email, "company": {}, "owner": {}, "properties": {}}
    company, owner = contact.company, contact.owner
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": f"{contact.first_name} {contact.last_name}".strip(),
        "email": contact.email or email,
        "job_title": contact.job_title,
        "phone": contact.phone,
        "language": contact.language or "",
        "lifecycle_stage": contact.lifecycle_stage,
        "company": (
            {
                "name": company.name,
                "domain": company.domain,
                "industry": company.industry,
                "country": company.country,
                "city": company.city,
                "employees": company.employees,
            }
            if company is not None
            else {}
        ),
        "owner": (
            {
                "first_name": owner.first_name,
                "last_name": owner.last_name,
                "name": owner.get_full_name(),
                "email": owner.email,
            }
            if owner is not None
            else {}
        ),
        "properties": contact.properties or {},
    }


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


def render(
    compiled: Compiled,
    contact: dict[str, Any],
    *,
    brand_name: str,
    link_urls: list[str],
    open_url: str,
    unsubscribe_url: str,
    preferences_url: str,
) -> Rendered:
    context = {
        "contact": contact,
        "brand": {"name": brand_name},
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "embudo": {
            **{f"link{n}": url for n, url in enumerate(link_urls)},
            "open_url": open_url,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": preferences_url,
        },
    }
    subject = compiled.subject.render(Context(context, autoescape=False))
    return Rendered(
        " ".join(subject.split()),
        compiled.html.render(Context(context)),
        compiled.text.render(Context(context, autoescape=False)),
    )


def link_destination(version: TemplateVersion, language: str, index: int, contact: Any) -> str:
    """Where the ``index``-th link of the version led this contact (its personal fields
    filled), or ``""`` if the version has no such link."""
    compiled = compiled_templates(version, language)
    if not 0 <= index < len(compiled.links):
        return ""
    href = compiled.links[index]
    if "{" in href:
        template = _TEXT.from_string(href)
        href = template.render(Context({"contact": contact_fields(contact)}, autoescape=False))
    return href.strip()


_PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def render_preview(parts: Mapping[str, Any], contact: Any, brand: Brand) -> Rendered:
    """One language of a compiled version as ``contact`` would see it, its links leading
    straight where they go (nothing is tracked) and the footer's links inert."""
    templates = Compiled(
        _TEXT.from_string(parts["subject"]),
        _HTML.from_string(parts["html"]),
        _TEXT.from_string(parts["text"]),
        tuple(parts.get("links", ())),
    )
    fields = contact_fields(contact)
    destinations = [
        _TEXT.from_string(href).render(Context({"contact": fields}, autoescape=False)).strip()
        if "{" in href
        else href
        for href in templates.links
    ]
    return render(
        templates,
        fields,
        brand_name=brand.name,
        link_urls=destinations,
        open_url=_PIXEL,
        unsubscribe_url="#unsubscribe",
        preferences_url="#preferences",
    )


# -- the brand -------------------------------------------------------------------------------------

_BRAND: TTLCache[int, Brand] = TTLCache(maxsize=1, ttl=5.0)
caches.register("email brand", _BRAND.clear)


def current_brand() -> Brand:
    """The brand (its row, or the defaults before anyone saved it); kept a few seconds, so a
    batch does not read it per message."""
    brand = _BRAND.get(1)
    if brand is None:
        brand = Brand.objects.filter(pk=1).first() or Brand(pk=1)
        _BRAND[1] = brand
    return brand


def forget_brand() -> None:
    _BRAND.clear()


def sender(brand: Brand) -> str:
    """The From header: the brand's name and address, or the site's default sender."""
    address = brand.from_email or settings.DEFAULT_FROM_EMAIL
    return formataddr((brand.from_name, address)) if brand.from_name else address


# -- the finished message ------------------------------------------------------------------------


def message_id(delivery_id: int | None = None) -> str:
    """A Message-ID that names the delivery, unique across retries of it."""
    local = f"{delivery_id}.{uuid.uuid4().hex}" if delivery_id else uuid.uuid4().hex
    return f"<{local}@{settings.EMBUDO_BOUNCE_DOMAIN}>"


class _ShortHeaders(Compat32):
    """Python's default e-mail policy, but a header that fits on one line as it is (ASCII, no
    line break, under 78 characters) is written as it is rather than run through the folding
    algorithm: the same bytes, at a fraction of the cost, a dozen times per message."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (
            type(value) is str
            and len(name) + len(value) < 76
            and value.isascii()
            and "\n" not in value
            and "\r" not in value
        ):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)  # type: ignore[misc]


_SHORT_HEADERS = _ShortHeaders()


class Message(EmailMultiAlternatives):
    """A delivery's message: turned into bytes (by the backend, when it sends) with
    :class:`_ShortHeaders`. Its ``from_email`` is the envelope sender (the VERP return path, as
    Django's SMTP backend uses it), also given as ``envelope_sender`` for code that speaks SMTP
    itself; the From header is the brand's."""

    envelope_sender: str = ""

    def message(self, **kwargs: Any) -> Any:
        mime = super().message(**kwargs)
        mime.policy = _SHORT_HEADERS
        return mime


def build_message(delivery: Delivery, *, connection: Any = None) -> EmailMultiAlternatives:
    """The message for one delivery, ready to send: personal fields rendered, every link a
    tracked click, the open pixel, the unsubscribe headers (RFC 8058 one-click), the VERP
    envelope sender and the brand's From. Its ``Message-ID`` is in ``extra_headers``."""
    version = delivery.version
    compiled = compiled_templates(version, delivery.language)
    brand = current_brand()
    pk = delivery.pk
    absolute = settings.EMBUDO_PUBLIC_URL
    unsubscribe = absolute + links.unsubscribe_path(pk)
    preferences = (
        absolute + links.preferences_path(delivery.contact_id)
        if delivery.contact_id
        else unsubscribe
    )
    rendered = render(
        compiled,
        contact_fields(delivery.contact, delivery.email),
        brand_name=brand.name,
        link_urls=[absolute + links.click_path(pk, n) for n in range(len(compiled.links))],
        open_url=absolute + links.open_path(pk),
        unsubscribe_url=unsubscribe,
        preferences_url=preferences,
    )
    headers = {
        "From": sender(brand),
        "Message-ID": message_id(pk),
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    message = Message(
        subject=rendered.subject,
        body=rendered.text,
        from_email=links.return_path(pk),
        to=[delivery.email],
        reply_to=[brand.reply_to] if brand.reply_to else None,
        headers=headers,
        connection=connection,
    )
    message.envelope_sender = message.from_email
    message.attach_alternative(rendered.html, "text/html")
    return message
