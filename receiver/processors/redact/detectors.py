"""The detector catalogue: the patterns that find secrets in a string, and the value checks
that tell a secret from a placeholder, a variable reference, a type or code.

Pure functions and data: nothing here counts, caches or touches rows (``engine`` does). Each
``Detector`` names the secret it finds (``[REDACTED:<name>]``), starts its pattern with a
literal so ``re`` can search fast, and lists the pre-filter gates (rare anchor characters)
that must be seen in a string before it runs. ``secret_key_word`` decides from an attribute's
key alone that its whole value is a credential.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

from receiver.config import ConfigError

# ---------------------------------------------------------------------------------------------
# Value checks shared by the context detectors.

# values that stand where a secret would but are not one: types, states, placeholders
_BORING_WORDS = """
    true false null none nil undefined yes no on off required optional string str bytes int
    integer number boolean bool any object redacted hidden masked empty expired invalid missing
    present absent set unset provided omitted n/a na changeit example sample dummy test value
    values await lambda self this cls not yield new function return
"""
_BORING = frozenset(_BORING_WORDS.split())
# A placeholder is a value made only of these words (with or without separators, any case, no
# digits): `changeme`, `YOUR_API_KEY`, `your-token-here`, `api_key`, `password`, `secret`,
# `<...>` aside. A real password that contains one of them (`Passw0rd99`, `Monkey2024`,
# `SuperSecret123`) is not made only of them.
_PLACEHOLDER_WORDS = """
    your my the new old some default dummy fake sample example test demo placeholder here insert
    enter put replace change me it todo fixme tbd xxx foo bar baz none null empty value string
    secret password passwd pass pwd passphrase token key api access auth bearer basic oauth
    client private session user db database app service account credential credentials env var
    redacted hidden masked real actual valid invalid goes
"""
_PLACEHOLDER_ALTERNATIVES = "|".join(sorted(_PLACEHOLDER_WORDS.split(), key=len, reverse=True))
# longest word first, and atomic: a failing value is rejected without trying every split
_PLACEHOLDER = re.compile(rf"(?:[-_. ]?(?>{_PLACEHOLDER_ALTERNATIVES})s?)+", re.IGNORECASE)
_CREDENTIAL_WORDS = "password|passwd|passphrase|pass|pwd|secret|token|key|auth|credentials?"
# the name of a credential, not its value: dbPassword, authToken, DB_PASSWORD, db-password
_CREDENTIAL_NAME = re.compile(
    rf"""[a-z]+(?:[A-Z][a-z]*)*(?:{_CREDENTIAL_WORDS.title()})s?
    |[A-Z]+(?:_[A-Z]+)*_(?:{_CREDENTIAL_WORDS.upper()})S?
    |[a-z]+(?:-[a-z]+)*-(?:{_CREDENTIAL_WORDS})s?""",
    re.VERBOSE,
)
_VAR_REF = re.compile(r"[$%{<(]|#\{|\[REDACTED")  # $X ${X} %X% {x} {{ x }} #{x} <x> (..)
_MASK = re.compile(r"[*xX•.…_#-]+")
_MASKED_TAIL = re.compile(r"(?:[*•]{3,}|[xX]{4,}|\.{3,}|…)\Z")  # sk-ant-xxxx, AKIA****, ghp_...
_DIGIT = re.compile(r"[0-9]")
_NUMERIC = re.compile(r"[0-9][0-9.,_]*")
_DOTTED_IDENT = re.compile(r"[A-Za-z_]\w{0,24}(?:\.[A-Za-z_]\w{0,24})+")  # not hvs.<90 chars>
_CALL = re.compile(r"[A-Za-z_][\w.]*+(?:(?:::|->)\w++)*+!?[(\[]")  # f(, a.b[, std::env::var(
_SNAKE_WORDS = re.compile(r"[a-z]+(?:_[a-z]+)+")  # "send_message": an identifier, not a secret
_WORD = re.compile(r"[A-Za-z_]+")
_PATH = re.compile(r"(?:~|\.{1,2})?/[\w.@-]+/|\.{1,2}/[\w.@-]+\Z")  # /run/secrets/x, ./x.txt


def plausible_secret(value: str, word: str = "", unquoted: bool = False) -> bool:
    """Whether a value found in a secret's place could be the secret, not a placeholder,
    variable reference, type, count or code: ``${TOKEN}``, ``<token>``, ``****``,
    ``your-api-key-here``, ``str``, ``4096`` (for ``token``/``key``), ``args.password``,
    ``get_token()``, ``dbPassword``, ``/run/secrets/db``. Placeholders are recognised by their
    whole shape, never by a word inside the value: ``Monkey2024`` and ``Passw0rd99`` are
    secrets."""
    value = value.strip()
    if len(value) < 3 or _VAR_REF.match(value) or _MASK.fullmatch(value):
        return False
    lowered = value.lower()
    if lowered in _BORING or lowered.strip("'\"") in _BORING:
        return False
    if word in ("token", "key") and _NUMERIC.fullmatch(value):
        return False
    if _PATH.match(value) or _CALL.match(value):
        return False
    if value[-1] in "*•xX.…" and _MASKED_TAIL.search(value):
        return False
    if (
        len(value) <= 48
        and not _DIGIT.search(value)  # placeholder words and names have no digits
        and (_PLACEHOLDER.fullmatch(value) or _CREDENTIAL_NAME.fullmatch(value))
    ):
        return False  # password=password, token=YOUR_TOKEN, api_key=api_key, pass=dbPassword
    if _SNAKE_WORDS.fullmatch(value):
        return False
    # self.password, settings.SECRET_KEY: code, not a value
    return not (unquoted and _DOTTED_IDENT.fullmatch(value))


# ---------------------------------------------------------------------------------------------
# The detector catalogue.

# (match, the original text) -> keep it? A check may also return the span to replace.
Check = Callable[[re.Match[str], str], bool | tuple[int, int]]


@dataclass(frozen=True)
class Detector:
    """One pattern of a named secret detector (a detector may have several entries).

    ``pattern`` is written to start with a literal, so ``re`` finds candidates with its fast
    prefix search; the whole match is replaced, or only its ``secret`` group when it has one
    (or the first of ``s1``..``s6`` that matched). ``lower`` patterns are written in lower case
    and run on a lower-cased copy of the value of the same length (case-insensitive without
    ``re.IGNORECASE``, which is slow); their spans apply to the original. ``check`` may veto a
    match. ``gates`` are pre-filter fragments: one rare anchor character (or a class of them)
    followed by fixed-width look-arounds; the pattern runs on a value only where one of its
    gates matched (custom detectors have none and always run).
    """

    name: str
    pattern: re.Pattern[str]
    gates: tuple[str, ...]
    check: Check | None = None
    lower: bool = False


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags | re.VERBOSE)


_SECRET_GROUPS = ("secret", "s1", "s2", "s3", "s4", "s5", "s6")


def secret_span(m: re.Match[str]) -> tuple[int, int]:
    """The part of a match that is the secret: its ``secret`` group (or the first of ``s1``..
    ``s6`` that matched), else the whole match."""
    for group in _SECRET_GROUPS:
        if group in m.re.groupindex and m.start(group) != -1:
            return m.span(group)
    return m.span()


def _secret_text(m: re.Match[str]) -> str:
    start, end = secret_span(m)
    return m.string[start:end]


def _mixed(text: str) -> bool:
    return (
        any(c.isdigit() for c in text)
        and any(c.isupper() for c in text)
        and any(c.islower() for c in text)
    )


def _mixed_case(text: str) -> bool:
    return any(c.isupper() for c in text) and any(c.islower() for c in text)


def _not_placeholder(m: re.Match[str], original: str = "") -> bool:
    return plausible_secret(_secret_text(m))


def _boundary(m: re.Match[str], chars: str = "_-") -> bool:
    """The match does not start in the middle of a word."""
    before = m.string[m.start() - 1 : m.start()]
    return not (before.isalnum() or (before and before in chars))


def _pem_b64_check(m: re.Match[str], original: str = "") -> bool:
    chunk = m.group(0)[:64]
    try:
        return b"PRIVATE KEY" in base64.b64decode(chunk[: len(chunk) // 4 * 4])
    except (binascii.Error, ValueError):
        return False


_DB_SCHEMES = re.compile(
    r"""(?:jdbc:)?(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql
    |sqlserver|clickhouse|cockroachdb|couchdb|neo4j(?:\+s)?|bolt|oracle|db2|snowflake)""",
    re.IGNORECASE | re.VERBOSE,
)
_SCHEME_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.:-]{0,40}\Z")


def _scheme(m: re.Match[str]) -> str:
    found = _SCHEME_BEFORE.search(m.string, max(0, m.start() - 41), m.start())
    return found.group(0) if found else ""


def _url_password_ok(m: re.Match[str], original: str = "") -> bool:
    password = m.group("secret")
    if password.isdigit() and len(password) <= 5:
        return False  # host:port@..., not a password
    return bool(_scheme(m)) and plausible_secret(password)


def _db_url_check(m: re.Match[str], original: str = "") -> bool:
    return bool(_DB_SCHEMES.fullmatch(_scheme(m))) and _url_password_ok(m)


_ADO_CONTEXT = re.compile(
    r"(?:server|data\s+source|host|user\s+id|uid|database|initial\s+catalog|address|addr)\s*="
)


def _ado_check(m: re.Match[str], original: str = "") -> bool:
    around = m.string[max(0, m.start() - 500) : m.end() + 500]
    return (
        _boundary(m) and ";" in around and bool(_ADO_CONTEXT.search(around)) and _not_placeholder(m)
    )


_AUTH_SCHEMES = frozenset({"bearer", "basic", "token", "bot", "apikey", "sso-key", "key"})


def _authorization_check(m: re.Match[str], original: str = "") -> bool:
    secret = m.group("secret")
    if secret in _AUTH_SCHEMES or not plausible_secret(secret):
        return False
    if m.group("scheme"):
        return True
    return len(secret) >= 16 and any(c.isdigit() for c in secret)


def _bearer_check(m: re.Match[str], original: str = "") -> bool:
    secret = m.group("secret")
    return _boundary(m, "") and any(c.isdigit() for c in secret) and plausible_secret(secret)


def _command_before(m: re.Match[str], window: int = 500) -> str:
    """The shell command the match is in, up to the match (at most ``window`` characters)."""
    start = m.start()
    floor = max(0, start - window)
    cut = max(m.string.rfind(sep, floor, start) for sep in ("\n", ";", "&&", "|"))
    return m.string[max(cut + 1, floor) : start]


_HTTP_CLIENT = re.compile(r"\b(?:curl|wget|http|https|xh|httpie)\b")
_MYSQL_CLIENT = re.compile(r"\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b")
_REDIS_CLIENT = re.compile(r"\b(?:redis-cli|valkey-cli|keydb-cli)\b")
_MONGO_CLIENT = re.compile(r"\bmongo(?:sh|dump|restore|export|import|stat|top|files)?\b")
_CAPITAL_P_CLIENT = re.compile(r"\b(?:sqlcmd|bcp|osql|isql|zip|unzip|zipcloak)\b")  # -P PASS
_LDAP_CLIENT = re.compile(r"\bldap(?:search|add|modify|delete|passwd|whoami|compare|modrdn|exop)\b")
_7Z_CLIENT = re.compile(r"\b7z[az]?\b")
_SMB_CLIENT = re.compile(r"\b(?:smbclient|rpcclient|smbmap|smbcacls|smbget|mount\.cifs)\b")
# commands that read a password on standard input: sudo -S, `login --password-stdin`, chpasswd
_PASSWORD_FROM_STDIN = re.compile(
    r"\bsudo[ \t]+(?:-[A-Za-z]*[ \t]+)*-[A-Za-z]*S\b|--password-stdin\b|\bchpasswd\b"
)


def _piped_to_password_reader(m: re.Match[str], original: str = "") -> bool:
    """``echo SECRET | sudo -S ...``: the command after the pipe reads a password."""
    after = m.string[m.end() : m.end() + 300]
    cut = min((i for i in map(after.find, ("\n", ";", "&&", "|")) if i >= 0), default=len(after))
    return _boundary(m) and bool(_PASSWORD_FROM_STDIN.search(after, 0, cut)) and _not_placeholder(m)


def _original_span_check(m: re.Match[str], original: str) -> bool | tuple[int, int]:
    """For patterns run on lower-case text: the placeholder check reads the original's case."""
    start, end = secret_span(m)
    return (start, end) if plausible_secret(original[start:end]) else False


def _curl_user_check(m: re.Match[str], original: str = "") -> bool:
    user, password = m.group("user"), m.group("secret")
    if not _boundary(m) or (user.isdigit() and password.isdigit()):
        return False
    return bool(_HTTP_CLIENT.search(_command_before(m))) and plausible_secret(password)


def _run_by(tool: re.Pattern[str]) -> Check:
    """A check for a password flag: it must start a word, in a command run by ``tool``."""

    def check(m: re.Match[str], original: str = "") -> bool:
        secret = _secret_text(m)
        return (
            _boundary(m)
            and not secret.startswith("-")  # mongosh -p --authenticationDatabase: a prompt
            and bool(tool.search(_command_before(m)))
            and plausible_secret(secret)
        )

    return check


_ARGUMENT = re.compile(r"\S+")


def _htpasswd_check(m: re.Match[str], original: str = "") -> bool | tuple[int, int]:
    """``htpasswd -b[c] FILE USER PASS`` or ``htpasswd -nb USER PASS``: the last argument."""
    flags = m.group("flags")
    if "b" not in flags:
        return False
    args = list(_ARGUMENT.finditer(m.group("args")))
    wanted = 2 if "n" in flags else 3
    if len(args) < wanted:
        return False
    offset = m.start("args")
    start, end = (offset + i for i in args[wanted - 1].span())
    if m.string[start] in "'\"" and m.string[end - 1] == m.string[start] and end - start > 2:
        start, end = start + 1, end - 1
    return (start, end) if plausible_secret(m.string[start:end]) else False


_REGISTRY_LOGIN = re.compile(
    r"\b(?:docker|podman|nerdctl|buildah|skopeo|oras|crane|helm(?:\s+registry)?)\s[^|;&\n]*\blogin\b"
)


def _registry_login_check(m: re.Match[str], original: str = "") -> bool:
    return (
        not _secret_text(m).startswith("-")
        and bool(_REGISTRY_LOGIN.search(_command_before(m)))
        and _not_placeholder(m)
    )


_NETRC_ENTRY = re.compile(r"\bmachine\s+\S+\s+login\s+\S+\s+\Z")


def _netrc_check(m: re.Match[str], original: str = "") -> bool:
    before = m.string[max(0, m.start() - 300) : m.start()]
    return bool(_NETRC_ENTRY.search(before)) and _not_placeholder(m)


_PAGINATION = re.compile(r"(?i)(?:next|page|continuation|resume|sync|cursor)[_-]?\Z")
_FLAG_TOKEN = re.compile(r"(?:\A|[\s\"'])--?[A-Za-z0-9][\w.-]*\Z")
_KEY_PREFIX = re.compile(
    r"(?:api|access|secret|private|auth|signing|encryption|master|client|account)[_-]?\Z"
)


_NEXT_ASSIGNMENT = re.compile(r"[&,;][ \t]*[A-Za-z_][\w.\[\]-]*=")
_TRAILING = ",;)}].:"


def _looks_random(value: str) -> bool:
    return len(value) >= 16 or (
        len(value) >= 8 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    )


def _assignment_check(m: re.Match[str], original: str) -> bool | tuple[int, int]:
    """Vetoes what only looks like ``<credential word>=<value>``, else returns the value's
    span, trimmed; runs on lower-case text and reads the original where case matters."""
    word = m.group("word")
    start = m.start("word")
    before = m.string[max(0, start - 40) : start]
    last = before[-1:]
    if word == "key":
        if not _KEY_PREFIX.search(before):
            return False  # key=, sort_key=, ssh key: not credential words
    elif word in ("pass", "auth") and last.isalpha():
        return False  # bypass=, compass:, oauth:
    elif word == "pwd" and last not in ("_", ".", "-"):
        return False  # PWD=/home/dev is the working directory
    kind = word if word in ("token", "key") else "pass"
    if word == "token" and _PAGINATION.search(before):
        return False  # next_token, pageToken: pagination cursors
    for group in ("s1", "s2", "s3", "s4", "s5", "s6"):
        if m.start(group) != -1:
            break
    value_start, value_end = m.span(group)
    value = original[value_start:value_end]
    if group in ("s2", "s4"):  # unquoted: a=b&c=d, host=x,password=y,port=5, x: y},
        cut = _NEXT_ASSIGNMENT.search(value)
        value = (value[: cut.start()] if cut else value).rstrip(_TRAILING)
        value_end = value_start + len(value)
    if group == "s4" and original[value_end : value_end + 1] not in _TRAILING:
        # `word: value more words` is prose unless the value looks random (`x: y,` is not)
        rest = original[value_end : original.find("\n", value_end) % (len(original) + 1)]
        if rest.strip(_TRAILING + " \t\r\"'\\") and not _looks_random(value):
            return False
    between = original[m.end("word") : value_start]
    if group == "s2" and " =" in between and _WORD.fullmatch(value):
        return False  # code: `auth = auth_from_url`, `TOKEN = CHAR ^ CTL`
    if group == "s4" and ((value[:1].isupper() and _WORD.fullmatch(value)) or "[" in value):
        return False  # a type: `auth: AuthType`, `token: Optional[str]`
    # --password VALUE counts only inside a command-line flag, and not --secret id=x,src=y
    if group == "s5" and (not _FLAG_TOKEN.search(before + word) or "=" in value):
        return False
    if group in ("s4", "s5") and value.isalpha() and value.islower() and len(value) < 16:
        return False  # prose: "refresh token: rotated", "--password prompt"
    if group == "s6" and value.isalpha() and len(value) < 16:
        return False  # a pair of words: ("token", "refreshed"), getenv("PASSWORD", "postgres")
    if not plausible_secret(value, kind, unquoted=group in ("s2", "s4", "s5")):
        return False
    return value_start, value_end


# A value after `=` (shell, env, query string, ini; also `x["password"] = `, `user[password]=`),
# after `:` (JSON, YAML, headers), quoted or not, after a command-line flag, or quoted after a
# quoted key and a comma (`define('DB_PASSWORD', '…')`, `setdefault("password", "…")`). Quoted
# values end at the quote (or a backslash: JSON escapes).
# `\u0026` and friends: Go-style JSON (log bodies from kvlists) escapes < > & inside strings
_U = r"""\\u[0-9a-fA-F]{4}"""
_QVAL = rf"""(?:[^\s"'\\]|{_U})(?:[^"'\\\r\n]|{_U}){{0,1000}}"""
# unquoted: up to whitespace or a quote; the check trims punctuation and a following key=
_EQVAL = rf"""(?:[^\s"'\\&;,)}}\]=<>|`]|{_U})(?:[^\s"'\\|`]|{_U}){{0,1000}}"""
_COLVAL = rf"""(?:[^\s"'\\,;}}\]\[{{<>|`]|{_U})(?:[^\s"'\\|`]|{_U}){{0,1000}}"""
_CLIVAL = rf"""(?:[^\s"'\\<>|`$-]|{_U})(?:[^\s"'\\]|{_U}){{0,1000}}"""
_TOKEN = rf"""(?:[^\s'"\\]|{_U})"""  # one character of an unquoted value
_ASSIGNED = rf"""
    (?:
        \\?["']?\]?[ \t]*(?:=>|:=|=)(?!=)[ \t]*
            (?:\\?["'](?P<s1>{_QVAL}) | (?P<s2>{_EQVAL}))
      | \\?["']?[ \t]*:(?![:/=])[ \t]*
            (?:\\?["'](?P<s3>{_QVAL}) | (?P<s4>{_COLVAL}))
      | [ \t]+(?P<s5>{_CLIVAL})
      | \\?["'][ \t]*,[ \t]*\\?["'](?P<s6>{_QVAL})
    )"""


def _assignment(words: str) -> re.Pattern[str]:
    """``<word><separator><value>`` in lower case: the word is a literal prefix, so ``re``
    searches fast; what comes before the word (``DB_``, ``api_``) is looked at by the check."""
    return _rx(f"(?P<word>{words}){_ASSIGNED}")


# Gate fragments (see Detector). Anchors are characters that are rare in telemetry, which is
# mostly hex ids, numbers, snake_case names and paths: not a-f, digits, _ . / or common letters.
_G_PEM = "B(?<=-----B)(?=EGIN)"
_G_URL = ":(?=//)"
_G_PASSWORD = "[wW](?<=[pP][aA][sS][sS][wW])"  # password, passwd
_G_PWD = "[wW](?<=[pP][wW])(?=[dD])"
_G_TOKEN = "[kK](?<=[tT][oO][kK])(?=[eE][nN])"
_G_KEY = "[kK](?=[eE][yY])"
_G_LONG_FLAG = (
    "-(?<=--)(?=[A-Za-z0-9-]{0,40}(?:[pP][aA][sS][sS]|[sS][eE][cC][rR][eE][tT]|[wW][dD])[ \\t=])"
)
# `=` anywhere, or `:` right after a key ending like a credential word (password, passphrase,
# pass, pwd, secret, token, key), possibly quoted: `secret: x`, `"pass": "x"`, `\"pass\":`.
_G_ASSIGN = (
    "=",
    ":(?<=[dDeEsStTnNyY]:)(?![:/])",
    ":(?<=[dDeEsStTnNyY][\"']:)(?![:/])",
    ":(?<=[dDeEsStTnNyY][\"'] :)(?![:/])",
    ":(?<=[dDeEsStTnNyY] :)(?![:/])",
    ':(?<=[dDeEsStTnNyY]\\\\":)(?![:/])',
)
_G_SECRET_WORD = (*_G_ASSIGN, _G_LONG_FLAG)
# a short flag starting a word: -u (curl), -P (sqlcmd, zip), -U (smbclient), -w (ldap), -S and
# -kS (sudo); a word after a dash: redis-cli (valkey-cli, ...), --password-stdin, --user
_G_SHORT_FLAG = "-(?<=[ \t]-)(?=u|[PUw][ \t]|k?S\\b)"
_G_DASH_WORD = "-(?=[cs-])(?=cli[ \t]|stdin\\b|-user[ \t=])"
_G_STDIN = (_G_SHORT_FLAG, _G_DASH_WORD)

_URL_USERINFO = _rx(
    rf"""://(?P<user>[^\s:/?\#@'"\\]{{0,256}}):(?P<secret>(?:[^\s/?\#'"\\]|{_U}){{1,256}})@"""
)
_PEM_HEAD = r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----"

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "gcp_private_key",
        _rx(r"""private_key\\?["'][ \t]*:[ \t]*\\?["'](?P<secret>-----BEGIN[^"']{0,20000})"""),
        (_G_PEM,),
    ),
    Detector(
        "private_key",
        _rx(
            rf"""{_PEM_HEAD}(?:(?!-----).){{0,20000}}
            -----END[A-Z0-9 ]{{0,40}}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----""",
            re.DOTALL,
        ),
        (_G_PEM,),
    ),
    Detector(  # no END line: a truncated or one-line key; take the base64 and headers after it
        "private_key",
        _rx(
            rf"""{_PEM_HEAD}
            (?:[A-Za-z0-9+/=\r\n]|\\[rn]|(?:Proc-Type|DEK-Info|Comment):[^\r\n\\]{{0,200}})
            {{40,20000}}"""
        ),
        (_G_PEM,),
    ),
    Detector(  # base64 of a PEM private key (kubeconfig client-key-data, Kubernetes secrets)
        "private_key",
        _rx(r"""LS0tLS1CRUdJTi(?<![A-Za-z0-9+/]LS0tLS1CRUdJTi)[A-Za-z0-9+/]{20,20000}+={0,2}"""),
        ("L(?=S0tLS1CRUdJTi)",),
        check=_pem_b64_check,
    ),
    Detector(
        "anthropic_key",
        _rx(r"""sk-ant-(?<![A-Za-z0-9_-]sk-ant-)[A-Za-z0-9_-]{20,300}+"""),
        ("k(?<=sk)(?=-ant-)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "openai_key",
        _rx(r"""sk-(?<![A-Za-z0-9_-]sk-)(?!ant-)[A-Za-z0-9_-]{32,300}+"""),
        ("k(?<=sk)(?=-)",),
        check=lambda m, _: _boundary(m) and _mixed(m.group(0)[3:]),
    ),
    Detector(
        "google_api_key",
        _rx(r"""AIza(?<![A-Za-z0-9_-]AIza)[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"""),
        ("A(?=Iza)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "stripe_key",
        _rx(
            r"""[sr]k_(?:live|test)_(?<![A-Za-z0-9].._live_)(?<![A-Za-z0-9].._test_)[0-9A-Za-z]{10,247}+"""
        ),
        ("k(?<=[sr]k)(?=_live_|_test_)",),
        check=lambda m, _: _boundary(m, ""),
    ),
    Detector(
        "stripe_key",
        _rx(r"""whsec_[0-9A-Za-z+/=]{20,100}"""),
        ("w(?=hsec_)",),
    ),
    Detector(
        "slack_token",
        _rx(r"""x(?:ox[abposre]|app)-(?<![A-Za-z0-9]x...-)[0-9A-Za-z-]{10,250}+"""),
        ("x(?=ox[abposre]-|app-)",),
        check=lambda m, _: _boundary(m, ""),
    ),
    Detector(
        "slack_webhook",
        _rx(
            r"""https://hooks\.slack\.com/
            (?P<secret>(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{8,300})"""
        ),
        (_G_URL,),
    ),
    Detector(
        "github_token",
        _rx(r"""gh[pousr]_(?<![A-Za-z0-9_]gh._)[A-Za-z0-9]{36,251}+"""),
        ("g(?=h[pousr]_)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "github_token",
        _rx(r"""github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{22,244}+"""),
        ("g(?=ithub_pat_)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "gitlab_token",
        _rx(r"""gl(?:pat|dt|rt|ptt|cbt|ft|soat|oas)-[0-9A-Za-z_-]{20,100}+"""),
        ("g(?=l(?:pat|dt|rt|ptt|cbt|ft|soat|oas)-)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "npm_token",
        _rx(r"""npm_(?<![A-Za-z0-9_]npm_)[A-Za-z0-9]{36}(?![A-Za-z0-9])"""),
        ("m(?<=npm)(?=_)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "pypi_token",
        _rx(r"""pypi-Ag(?<![A-Za-z0-9_-]pypi-Ag)[A-Za-z0-9_-]{50,500}+"""),
        ("y(?<=py)(?=pi-Ag)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector(
        "huggingface_token",
        _rx(r"""hf_(?<![A-Za-z0-9_]hf_)[A-Za-z0-9]{34,40}+(?![A-Za-z0-9])"""),
        ("h(?=f_)",),
        check=lambda m, _: _boundary(m) and _mixed_case(m.group(0)[3:]),
    ),
    Detector(
        "aws_access_key_id",
        _rx(r"""A(?:KIA|SIA|BIA|CCA)(?<![A-Za-z0-9]A...)[A-Z0-9]{16}(?![A-Za-z0-9])"""),
        ("A(?=KIA|SIA|BIA|CCA)",),
        check=lambda m, _: _boundary(m, ""),
    ),
    Detector(  # aws_secret_access_key=, AWS_SECRET_ACCESS_KEY=, "SecretAccessKey": (lower case)
        "aws_secret_key",
        _rx(
            r"""secret_?(?:access_?)?key\\?["']?[ \t]*(?:=>|[:=])?[ \t]*\\?["']?
            (?P<secret>[a-z0-9/+]{40})(?![a-z0-9/+=])"""
        ),
        (*_G_ASSIGN, _G_KEY),
        lower=True,
    ),
    Detector(
        "azure_storage_key",
        _rx(
            r"""key=(?:(?<=accountkey=)|(?<=sharedaccesskey=))
            (?P<secret>[a-z0-9+/]{20,200}={0,2})"""
        ),
        ("=",),
        lower=True,
    ),
    Detector(  # AZURE_CLIENT_SECRET=, ARM_CLIENT_SECRET=, azure.client-secret: (lower case)
        "azure_client_secret",
        _rx(
            rf"""client[_.-]secret\\?["']?[ \t]*[:=][ \t]*\\?["']?
            (?P<secret>{_TOKEN}{{8,200}})"""
        ),
        _G_ASSIGN,
        check=lambda m, _: (
            bool(re.search(r"(?:azure|arm)[_.-]?\Z", m.string[max(0, m.start() - 6) : m.start()]))
            and _not_placeholder(m)
        ),
        lower=True,
    ),
    Detector(  # the client secret format itself: 3 chars, a digit, Q~, 31-34 chars
        "azure_client_secret",
        _rx(r"""(?<![\w~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![\w~.-])"""),
        ("~(?<=[0-9]Q~)",),
    ),
    Detector(
        "azure_client_secret",
        _rx(
            rf"""az[ \t]+login\b[^\n]{{0,500}}?[ \t](?:-p|--password)(?:[ \t]+|=)
            \\?["']?(?P<secret>{_TOKEN}{{4,256}})"""
        ),
        ("z(?<=az)(?=[ \t]+login)",),
        check=lambda m, _: _boundary(m) and _not_placeholder(m),
    ),
    Detector(
        "signed_url",
        _rx(
            r"""[?&](?:sig|x-amz-signature|x-amz-security-token|x-goog-signature)=
            (?P<secret>[^&\s"'\#\\]{16,4096})"""
        ),
        ("=",),
        lower=True,
    ),
    Detector(
        "jwt",
        _rx(
            r"""eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,4096}+\.eyJ[A-Za-z0-9_-]{8,8192}+
            \.[A-Za-z0-9_-]{0,4096}+"""
        ),
        ("J(?<=eyJ)",),
        check=lambda m, _: _boundary(m),
    ),
    Detector("connection_string", _URL_USERINFO, (_G_URL,), check=_db_url_check),
    Detector(  # ADO.NET / ODBC: Server=db;User Id=app;Password=...;
        "connection_string",
        _rx(
            r"""p(?:assword|wd)[ \t]*=[ \t]*(?P<secret>[^;"'\r\n]{1,256}?)[ \t]*(?=;|$|["'\r\n])"""
        ),
        (_G_PASSWORD, _G_PWD),
        check=_ado_check,
        lower=True,
    ),
    Detector("url_credentials", _URL_USERINFO, (_G_URL,), check=_url_password_ok),
    Detector(
        "authorization_header",
        _rx(
            r"""authorization\\?["']?[ \t]*[:=][ \t]*\\?["']?
            (?:(?P<scheme>bearer|basic|token|bot|apikey|sso-key|key)[ \t]+)?
            (?P<secret>[a-z0-9._~+/=:-]{8,4096})"""
        ),
        ("[zZ](?<=[oO][rR][iI][zZ])(?=[aA][tT][iI][oO][nN])",),
        check=_authorization_check,
        lower=True,
    ),
    Detector(
        "authorization_header",
        _rx(r"""bearer[ \t]+(?P<secret>[a-z0-9._~+/-]{16,4096}=*)"""),
        ("B(?=earer|EARER)", "[zZ](?<=[oO][rR][iI][zZ])(?=[aA][tT][iI][oO][nN])"),
        check=_bearer_check,
        lower=True,
    ),
    Detector(  # curl -u user:password, wget --user=... (the command must be an HTTP client)
        "cli_password",
        _rx(
            rf"""-(?:u[ \t]*|-user(?:[ \t]+|=))\\?["']?
            (?P<user>[^\s:'"\\]{{1,256}}):(?P<secret>{_TOKEN}{{1,256}})"""
        ),
        (_G_SHORT_FLAG, _G_DASH_WORD),
        check=_curl_user_check,
    ),
    Detector(  # mysql -pSECRET, mysql -p'SECRET'
        "cli_password",
        _rx(
            rf"""-p(?:\\?["'](?P<s1>(?:[^"'\\\r\n]|{_U}){{1,256}})
            |(?P<s2>(?:[^\s'"\\-]|{_U}){_TOKEN}{{0,255}}))"""
        ),
        ("[qQ](?<=[mM][yY][sS][qQ])(?=[lL])", "m(?=ariadb)"),
        check=_run_by(_MYSQL_CLIENT),
    ),
    Detector(  # docker login -u user -p SECRET (and podman, helm registry, ...)
        "cli_password",
        _rx(rf"""-p[ \t]+\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        ("g(?<=log)(?=in)",),
        check=lambda m, _: _boundary(m) and _registry_login_check(m),
    ),
    Detector(
        "cli_password",
        _rx(rf"""sshpass[ \t]+-p[ \t]*\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        ("h(?<=ssh)(?=pass)",),
        check=_not_placeholder,
    ),
    Detector(  # redis-cli -a SECRET (valkey-cli, keydb-cli)
        "cli_password",
        _rx(rf"""-a[ \t]+\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        (_G_DASH_WORD,),
        check=_run_by(_REDIS_CLIENT),
    ),
    Detector(  # mongosh -u admin -p SECRET (mongo, mongodump, mongorestore, ...)
        "cli_password",
        _rx(rf"""-p[ \t]+\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        ("g(?<=mong)(?=o)",),
        check=_run_by(_MONGO_CLIENT),
    ),
    Detector(  # htpasswd -b[c] FILE USER SECRET, htpasswd -nb USER SECRET
        "cli_password",
        _rx(
            r"""htpasswd(?P<flags>(?:[ \t]+-[A-Za-z]{1,8})+)
            [ \t]+(?P<args>[^\s;|&]{1,256}(?:[ \t]+[^\s;|&]{1,256}){1,2})"""
        ),
        (_G_PASSWORD,),
        check=_htpasswd_check,
    ),
    Detector(  # echo SECRET | sudo -S ..., printf ... | docker login --password-stdin, chpasswd
        "cli_password",
        _rx(
            r"""(?:echo[ \t]+(?:-[neE]{1,3}[ \t]+)?
            |printf[ \t]+(?:\\?["']?%s(?:\\{1,2}n)?\\?["']?[ \t]+)?)
            (?:\\?"(?P<s1>[^"\\\r\n]{1,256})\\?"|'(?P<s2>[^'\r\n]{1,256})'|(?P<s3>[^\s"'|;&\\]{1,256}))
            [ \t]*\|"""
        ),
        (*_G_STDIN, _G_PASSWORD),
        check=_piped_to_password_reader,
    ),
    Detector(  # sudo -S ... <<< SECRET, docker login --password-stdin <<< SECRET
        "cli_password",
        _rx(rf"""<<<[ \t]*\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        _G_STDIN,
        check=lambda m, _: (
            bool(_PASSWORD_FROM_STDIN.search(_command_before(m))) and _not_placeholder(m)
        ),
    ),
    Detector(  # sqlcmd -S db -U sa -P SECRET (bcp, osql); zip -P SECRET
        "cli_password",
        _rx(rf"""-P[ \t]+\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        (_G_SHORT_FLAG,),
        check=_run_by(_CAPITAL_P_CLIENT),
    ),
    Detector(  # ldapsearch -D cn=admin -w SECRET
        "cli_password",
        _rx(rf"""-w[ \t]+\\?["']?(?P<secret>{_TOKEN}{{1,256}})"""),
        (_G_SHORT_FLAG,),
        check=_run_by(_LDAP_CLIENT),
    ),
    Detector(  # 7z a -pSECRET archive.7z
        "cli_password",
        _rx(rf"""-p(?P<secret>[^\s"'\\-]{_TOKEN}{{0,255}})"""),
        ("z(?<=7z)",),
        check=_run_by(_7Z_CLIENT),
    ),
    Detector(  # smbclient -U user%SECRET
        "cli_password",
        _rx(rf"""-U[ \t]+\\?["']?[^\s%"'\\]{{1,128}}%(?P<secret>{_TOKEN}{{1,256}})"""),
        (_G_SHORT_FLAG,),
        check=_run_by(_SMB_CLIENT),
    ),
    Detector(  # SQL: CREATE USER .. IDENTIFIED BY 'x', ALTER ROLE .. PASSWORD 'x', SET PASSWORD
        "sql_password",
        _rx(
            r"""(?:identified[ \t]+(?:with[ \t]+\w{1,40}[ \t]+)?by[ \t]+
            |password(?:[ \t]+for[ \t]+[^\s=]{1,200}[ \t]*=[ \t]*|[ \t]+))
            (?:'(?P<s1>[^'\r\n]{1,256})'|\\?"(?P<s2>[^"\\\r\n]{1,256})\\?")"""
        ),
        ("B(?=Y[ \t]')", "y(?<=by)(?=[ \t]')", _G_PASSWORD),  # BY ', by ': anchors in use
        check=lambda m, original: _boundary(m) and _original_span_check(m, original),
        lower=True,
    ),
    Detector(
        "secret_assignment",
        _assignment("pass(?:word|wd|phrase)?"),
        (_G_PASSWORD, *_G_SECRET_WORD),
        check=_assignment_check,
        lower=True,
    ),
    Detector(
        "secret_assignment",
        _assignment("pwd"),
        (_G_PWD,),
        check=_assignment_check,
        lower=True,
    ),
    Detector(
        "secret_assignment",
        _assignment("secret"),
        _G_SECRET_WORD,
        check=_assignment_check,
        lower=True,
    ),
    Detector(
        "secret_assignment",
        _assignment("token"),
        (_G_TOKEN,),
        check=_assignment_check,
        lower=True,
    ),
    Detector(  # docker config.json "auth": "<base64 user:token>", basic_auth=
        "secret_assignment",
        _assignment("auth"),
        ("[hH](?<=[aA][uU][tT][hH])(?=\\\\?[\"']?[ \t]*[:=])",),
        check=_assignment_check,
        lower=True,
    ),
    Detector(  # .netrc: machine HOST login USER password SECRET
        "secret_assignment",
        _rx(rf"""password[ \t]+(?P<secret>{_TOKEN}{{1,256}})"""),
        (_G_PASSWORD,),
        check=_netrc_check,
        lower=True,
    ),
    Detector(  # <password>SECRET</password> (Maven settings.xml, .NET and Java XML configs)
        "secret_assignment",
        _rx(r"""<passw(?:or)?d>(?P<secret>[^<\r\n]{1,256})</passw(?:or)?d>"""),
        (_G_PASSWORD,),
        check=_original_span_check,
        lower=True,
    ),
    Detector(  # builder.password("SECRET"), setPassword("SECRET"), withPassword("SECRET")
        "secret_assignment",
        _rx(
            r"""(?:\.|set|with)passw(?:or)?d\([ \t]*
            \\?["'](?P<secret>[^"'\\\r\n]{1,256})\\?["'][ \t]*\)"""
        ),
        (_G_PASSWORD,),
        check=_original_span_check,
        lower=True,
    ),
    Detector(  # api_key, access-key, apikey, private_key, ... (the check reads the prefix)
        "secret_assignment",
        _assignment("key"),
        (_G_KEY,),
        check=_assignment_check,
        lower=True,
    ),
)

SECRET_ATTRIBUTE = "secret_attribute"
DETECTOR_NAMES = (*dict.fromkeys(d.name for d in DETECTORS), SECRET_ATTRIBUTE)

# Attribute keys whose whole value is a credential (the key's last word decides).
_SECRET_KEY = re.compile(
    r"""(?i)(?:password|passwd|passphrase|(?<![a-z])pass|(?<![a-z])pwd|secret|token
    |(?:api|access|secret|private|auth|signing|encryption|master|client|account)[_-]?key
    |apikey|authorization|cookie)\Z""",
    re.VERBOSE,
)


def secret_key_word(key: str) -> str | None:
    """The credential word a key ends with (``db.password`` -> ``password``), or None."""
    found = _SECRET_KEY.search(key)
    if not found:
        return None
    word = found.group(0).lower()
    if word.endswith("token") and _PAGINATION.search(key[: found.start()]):
        return None
    return "token" if word.endswith("token") else "key" if word.endswith("key") else word


_CUSTOM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def custom_detector(name: str, pattern: str) -> Detector:
    """A user detector: every match of ``pattern`` (or of its ``secret`` group) is replaced."""
    setting = f"redaction_custom_detectors.{name}"
    if not _CUSTOM_NAME.fullmatch(name):
        raise ConfigError(f"{setting}: a detector name is letters, digits, _ . - (max 64)")
    if name in DETECTOR_NAMES:
        raise ConfigError(f"{setting}: {name!r} is a built-in detector; pick another name")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{setting}: invalid regular expression: {exc}") from None
    if compiled.search("") is not None:
        raise ConfigError(f"{setting}: the regular expression matches the empty string")
    return Detector(name, compiled, ())
