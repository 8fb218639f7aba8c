"""A corpus for the redaction tests: secrets embedded in realistic telemetry values, and clean
values that must come through unchanged.

The secrets are fake but have the real formats (prefixes, lengths, alphabets). They are built
at import time from a seeded generator, so no token-shaped literal sits in the source for a
push-protection scanner to trip on, and every run sees the same values.

``SECRET_CASES``: each value (a Bash command as Claude Code's ``tool_parameters`` /
``full_command`` or Codex's ``codex.tool_result`` ``arguments`` carry it, a JSON tool input, a log
body, a URL, a file) with the secrets in it and the detector that must name each. A case with
a ``key`` is an attribute: the value is redacted as ``{key: value}``.

``CLEAN_VALUES``: commands, paths, ids, base64 that is not a secret, model names, prose, JSON
and config that merely talk about passwords and tokens.

People's passwords (issue 18): ``PASSWORD_CASES`` puts human-chosen passwords (words with
digits and symbols, many containing pass, secret, key, token, auth) in the shell commands, env
files, URLs, JSON, YAML, CLI flags and heredocs they occur in; ``ISSUE_18_CASES`` are the six
the issue found stored in clear; ``HARD_CASES`` are real forms no detector knows yet.
``GENERATED_CLEAN_VALUES`` are the same tools without a secret, placeholders of every shape,
prose, code, logs, ids, hashes and base64. ``ALL_SECRET_CASES`` and ``ALL_CLEAN_VALUES`` are
what the corpus figures are computed over.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import urllib.parse
import uuid
from dataclasses import dataclass

_rng = random.Random(20261122)

LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
DIGITS = string.digits
ALNUM = LOWER + UPPER + DIGITS
B64URL = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"


def tok(n: int, alphabet: str = ALNUM) -> str:
    """n random characters; with letters and digits in the alphabet, always mixed case and
    digits (real keys are, and the format checks rely on it)."""
    while True:
        text = "".join(_rng.choice(alphabet) for _ in range(n))
        need = [s for s in (LOWER, UPPER, DIGITS) if set(s) & set(alphabet)]
        if len(need) < 3 or all(set(text) & set(s) for s in need):
            return text


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def random_bytes(n: int) -> bytes:
    return bytes(_rng.randrange(256) for _ in range(n))


def pem(kind: str, size: int = 1190, escaped: bool = False) -> tuple[str, list[str]]:
    """A PEM block and its base64 body lines."""
    body = b64(random_bytes(size))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    label = f"{kind} PRIVATE KEY".strip()
    sep = "\\n" if escaped else "\n"
    text = sep.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + sep
    return text, lines


# -- the fake secrets -------------------------------------------------------------------------

ANTHROPIC = "sk-ant-" + "api03-" + tok(93, B64URL) + "AA"
ANTHROPIC_ADMIN = "sk-ant-" + "admin01-" + tok(93, B64URL) + "AA"
OPENAI_PROJECT = "sk-" + "proj-" + tok(156, B64URL)
OPENAI_LEGACY = "sk-" + tok(48)
OPENAI_SVCACCT = "sk-" + "svcacct-" + tok(100, B64URL)
GOOGLE = "AI" + "za" + "Sy" + tok(33, B64URL)
GOOGLE_2 = "AI" + "za" + "Sy" + tok(33, B64URL)
STRIPE_LIVE = "sk_" + "live_" + tok(99)
STRIPE_TEST = "sk_" + "test_" + tok(99)
STRIPE_RESTRICTED = "rk_" + "live_" + tok(99)
STRIPE_WEBHOOK = "wh" + "sec_" + tok(32)
SLACK_BOT = "xo" + "xb-" + tok(12, DIGITS) + "-" + tok(13, DIGITS) + "-" + tok(24)
SLACK_USER = (
    "xo" + "xp-" + tok(12, DIGITS) + "-" + tok(12, DIGITS) + "-" + tok(13, DIGITS) + "-"
) + tok(32, HEX)
SLACK_APP = "xa" + "pp-1-" + tok(11, UPPER + DIGITS) + "-" + tok(13, DIGITS) + "-" + tok(64, HEX)
SLACK_WEBHOOK = f"services/T{tok(8, UPPER + DIGITS)}/B{tok(10, UPPER + DIGITS)}/{tok(24)}"
SLACK_WORKFLOW = f"triggers/T{tok(8, UPPER + DIGITS)}/{tok(13, DIGITS)}/{tok(32, HEX)}"
GITHUB_PAT = "gh" + "p_" + tok(36)
GITHUB_PAT_2 = "gh" + "p_" + tok(36)
GITHUB_OAUTH = "gh" + "o_" + tok(36)
GITHUB_APP = "gh" + "s_" + tok(36)
GITHUB_USER_TO_SERVER = "gh" + "u_" + tok(36)
GITHUB_FINE = "github" + "_pat_" + "11A" + tok(19, UPPER + DIGITS) + "_" + tok(59)
GITLAB = "gl" + "pat-" + tok(20, B64URL)
GITLAB_2 = "gl" + "pat-" + tok(20, B64URL)
GITLAB_DEPLOY = "gl" + "dt-" + tok(20, B64URL)
NPM = "np" + "m_" + tok(36)
PYPI = "py" + "pi-AgEIcHlwaS5vcmc" + tok(140, B64URL)
HUGGINGFACE = "h" + "f_" + tok(34, LOWER + UPPER)
AWS_KEY_ID = "AK" + "IA" + tok(16, UPPER + DIGITS)
AWS_KEY_ID_2 = "AK" + "IA" + tok(16, UPPER + DIGITS)
AWS_TEMP_KEY_ID = "AS" + "IA" + tok(16, UPPER + DIGITS)
AWS_SECRET = tok(40, B64)
AWS_SECRET_2 = tok(40, B64)
AWS_SECRET_3 = tok(40, B64)
AWS_SESSION = "IQoJb3JpZ2luX2VjE" + tok(360, B64) + "=="
AZURE_ACCOUNT_KEY = b64(random_bytes(64))
AZURE_ACCOUNT_KEY_2 = b64(random_bytes(64))
AZURE_CLIENT_SECRET = tok(3) + "8Q~" + tok(34, ALNUM + "_.-")
AZURE_CLIENT_SECRET_2 = tok(3) + "7Q~" + tok(34, ALNUM + "_.-")
AZURE_SAS_SIG = tok(43, B64).replace("/", "%2F").replace("+", "%2B") + "%3D"
S3_SIGNATURE = tok(64, HEX)
JWT_HEADER = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": tok(8, HEX)}).encode())
JWT = ".".join(
    (
        JWT_HEADER,
        b64url(
            json.dumps({"sub": "system:serviceaccount:ci:deployer", "exp": 1795300000}).encode()
        ),
        tok(342, B64URL),
    )
)
JWT_2 = ".".join(
    (
        b64url(b'{"alg":"HS256","typ":"JWT"}'),
        b64url(json.dumps({"sub": "u_1842", "role": "admin", "iat": 1795200000}).encode()),
        tok(43, B64URL),
    )
)
BASIC_CREDENTIALS = b64(b"admin:" + tok(18).encode())
DOCKER_AUTH = b64(f"deploy:{GITHUB_PAT_2}".encode())
RSA_KEY, RSA_LINES = pem("RSA")
OPENSSH_KEY, OPENSSH_LINES = pem("OPENSSH", 400)
EC_KEY_ESCAPED, EC_LINES = pem("EC", 121, escaped=True)
PKCS8_KEY_ESCAPED, PKCS8_LINES = pem("", 1216, escaped=True)
PGP_KEY, PGP_LINES = pem("PGP", 900)
PGP_KEY = PGP_KEY.replace("PRIVATE KEY-----", "PRIVATE KEY BLOCK-----")
KUBE_CLIENT_KEY = b64(pem("RSA", 600)[0].encode())
KUBE_CLIENT_CERT = b64(
    (
        "-----BEGIN CERTIFICATE-----\n" + b64(random_bytes(500)) + "\n-----END CERTIFICATE-----\n"
    ).encode()
)
DB_PASSWORD = "S3cr3t-" + tok(10)
MONGO_PASSWORD = "Mongo" + tok(12)
REDIS_PASSWORD = "r3d1s" + tok(14)
MYSQL_PASSWORD = "My$ql" + tok(10)
AMQP_PASSWORD = "Rabbit" + tok(10)
ADO_PASSWORD = "Ado-" + tok(14) + "!"
URL_PASSWORD = "hunter2" + tok(8)
FTP_PASSWORD = "Ftp" + tok(12)
CURL_PASSWORD = "Adm1n" + tok(10)
SSHPASS_PASSWORD = "Sup3r" + tok(9) + "!"
DOCKER_LOGIN_PASSWORD = "dckr_pat_" + tok(27, B64URL)
ENV_PASSWORD = "pg-" + tok(12)
YAML_PASSWORD = "yaml-" + tok(12)
JSON_PASSWORD = "Tr0ub4dor&3" + tok(4)
SPRING_PASSWORD = "Spring#" + tok(10)
TF_PASSWORD = "tf-" + tok(16)
SMTP_PASSWORD = "smtp pass " + tok(8)
DSN_PASSWORD = "pgDsn" + tok(10)
NETRC_PASSWORD = tok(8, HEX) + "-" + tok(4, HEX) + "-" + tok(4, HEX) + "-" + tok(12, HEX)
WGET_PASSWORD = "Ci-" + tok(12)
COMPOSE_PASSWORD = "compose-" + tok(10)
API_KEY_HEX = tok(32, HEX)
SENDGRID = "SG." + tok(22, B64URL) + "." + tok(43, B64URL)
VAULT_TOKEN = "hvs." + tok(90, B64URL)
GOOGLE_OAUTH_ACCESS = "ya29." + tok(150, B64URL)
GOOGLE_CLIENT_SECRET = "GOCSPX-" + tok(28, B64URL)
DJANGO_SECRET = tok(50, ALNUM + "!@#%^&*(-_=+)")
COOKIE_SESSION = tok(64, HEX)
DB_ATTR_PASSWORD = "attr-" + tok(14)
CUSTOM_HEADER_KEY = tok(40, ALNUM)


@dataclass(frozen=True)
class Case:
    """A value carrying secrets; ``found`` pairs each secret with the detector that names it."""

    value: str
    found: tuple[tuple[str, str], ...]
    key: str | None = None


def bash(command: str, description: str = "Run command") -> str:
    """Claude Code's Bash ``tool_parameters``: the tool input as JSON."""
    return json.dumps({"command": command, "description": description})


def codex_args(command: str) -> str:
    """Codex's ``codex.tool_result`` ``arguments`` for a shell call."""
    return json.dumps({"command": ["bash", "-lc", command], "workdir": "/home/dev/realcap/work"})


GCP_SERVICE_ACCOUNT = json.dumps(
    {
        "type": "service_account",
        "project_id": "acme-prod-4711",
        "private_key_id": tok(40, HEX),
        "private_key": PKCS8_KEY_ESCAPED.replace("\\n", "\n"),
        "client_email": "deployer@acme-prod-4711.iam.gserviceaccount.com",
        "client_id": tok(21, DIGITS),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    },
    indent=2,
)

SECRET_CASES: tuple[Case, ...] = (
    # -- Bash command lines (Claude tool_parameters / full_command, Codex arguments) --
    Case(f"export ANTHROPIC_API_KEY={ANTHROPIC}", (("anthropic_key", ANTHROPIC),)),
    Case(
        bash(
            "curl https://api.anthropic.com/v1/messages "
            f'-H "x-api-key: {ANTHROPIC}" -H "anthropic-version: 2023-06-01" -d @req.json'
        ),
        (("anthropic_key", ANTHROPIC),),
    ),
    Case(
        f"OPENAI_API_KEY={OPENAI_PROJECT} python scripts/eval.py --model gpt-4o --n 50",
        (("openai_key", OPENAI_PROJECT),),
    ),
    Case(
        f'curl https://api.openai.com/v1/models -H "Authorization: Bearer {OPENAI_LEGACY}"',
        (("openai_key", OPENAI_LEGACY),),
    ),
    Case(
        codex_args(f"export OPENAI_API_KEY={OPENAI_SVCACCT} && python run_batch.py"),
        (("openai_key", OPENAI_SVCACCT),),
    ),
    Case(
        f'curl "https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key={GOOGLE}"',
        (("google_api_key", GOOGLE),),
    ),
    Case(
        f"curl https://api.stripe.com/v1/charges -u {STRIPE_LIVE}: -d amount=2000 -d currency=eur",
        (("stripe_key", STRIPE_LIVE),),
    ),
    Case(
        f"stripe listen --forward-to localhost:4242/webhook --api-key {STRIPE_RESTRICTED}",
        (("stripe_key", STRIPE_RESTRICTED),),
    ),
    Case(f"export STRIPE_WEBHOOK_SECRET={STRIPE_WEBHOOK}", (("stripe_key", STRIPE_WEBHOOK),)),
    Case(
        bash(
            "curl -X POST -H 'Content-type: application/json' --data '{\"text\":\"deploy done\"}' "
            f"https://hooks.slack.com/{SLACK_WEBHOOK}",
            "Notify Slack",
        ),
        (("slack_webhook", SLACK_WEBHOOK),),
    ),
    Case(f"SLACK_BOT_TOKEN={SLACK_BOT} node bot.js", (("slack_token", SLACK_BOT),)),
    Case(
        f"git clone https://x-access-token:{GITHUB_APP}@github.com/acme/infra.git",
        (("github_token", GITHUB_APP),),
    ),
    Case(f"echo {GITHUB_PAT} | gh auth login --with-token", (("github_token", GITHUB_PAT),)),
    Case(
        f"GITHUB_TOKEN={GITHUB_FINE} gh pr list --repo acme/api --state open",
        (("github_token", GITHUB_FINE),),
    ),
    Case(
        f'curl --header "PRIVATE-TOKEN: {GITLAB}" '
        "https://gitlab.example.com/api/v4/projects/42/pipelines",
        (("gitlab_token", GITLAB),),
    ),
    Case(
        f"git remote set-url origin https://oauth2:{GITLAB_2}@gitlab.com/acme/app.git",
        (("gitlab_token", GITLAB_2),),
    ),
    Case(
        f"aws configure set aws_access_key_id {AWS_KEY_ID} && "
        f"aws configure set aws_secret_access_key {AWS_SECRET}",
        (("aws_access_key_id", AWS_KEY_ID), ("aws_secret_key", AWS_SECRET)),
    ),
    Case(
        f"AWS_ACCESS_KEY_ID={AWS_TEMP_KEY_ID} AWS_SECRET_ACCESS_KEY={AWS_SECRET_2} "
        f"AWS_SESSION_TOKEN={AWS_SESSION} aws s3 ls s3://acme-backups/",
        (
            ("aws_access_key_id", AWS_TEMP_KEY_ID),
            ("aws_secret_key", AWS_SECRET_2),
            ("secret_assignment", AWS_SESSION),
        ),
    ),
    Case(
        "az storage blob upload --container-name logs --file app.log --connection-string "
        '"DefaultEndpointsProtocol=https;AccountName=acmelogs;'
        f'AccountKey={AZURE_ACCOUNT_KEY};EndpointSuffix=core.windows.net"',
        (("azure_storage_key", AZURE_ACCOUNT_KEY),),
    ),
    Case(
        f"export AZURE_CLIENT_SECRET={AZURE_CLIENT_SECRET}",
        (("azure_client_secret", AZURE_CLIENT_SECRET),),
    ),
    Case(
        "az login --service-principal -u 1f0e6a2c-7d3b-4c5e-9a8f-2b1c3d4e5f60 "
        f"-p '{AZURE_CLIENT_SECRET_2}' --tenant 72f988bf-86f1-41af-91ab-2d7cd011db47",
        (("azure_client_secret", AZURE_CLIENT_SECRET_2),),
    ),
    Case(
        f'psql "postgresql://app:{DB_PASSWORD}@db.internal:5432/orders?sslmode=require" -c "\\dt"',
        (("connection_string", DB_PASSWORD),),
    ),
    Case(
        f"mysql -h db.internal -u root -p{MYSQL_PASSWORD} orders < dump.sql",
        (("cli_password", MYSQL_PASSWORD),),
    ),
    Case(
        f'mongosh "mongodb+srv://admin:{MONGO_PASSWORD}@cluster0.ab1cd.mongodb.net/prod"',
        (("connection_string", MONGO_PASSWORD),),
    ),
    Case(
        f"redis-cli -u redis://default:{REDIS_PASSWORD}@cache.internal:6379/0 ping",
        (("connection_string", REDIS_PASSWORD),),
    ),
    Case(
        f"curl -u admin:{CURL_PASSWORD} https://jenkins.internal/api/json?pretty=true",
        (("cli_password", CURL_PASSWORD),),
    ),
    Case(
        f"wget --user=ci --password={WGET_PASSWORD} https://artifacts.internal/build-1842.tgz",
        (("secret_assignment", WGET_PASSWORD),),
    ),
    Case(
        f"sshpass -p '{SSHPASS_PASSWORD}' ssh -o StrictHostKeyChecking=no deploy@10.0.3.4",
        (("cli_password", SSHPASS_PASSWORD),),
    ),
    Case(
        f"docker login -u deploy -p {DOCKER_LOGIN_PASSWORD} registry.example.com",
        (("cli_password", DOCKER_LOGIN_PASSWORD),),
    ),
    Case(
        f"PGPASSWORD={ENV_PASSWORD} psql -h db.internal -U app -d orders -f migrate.sql",
        (("secret_assignment", ENV_PASSWORD),),
    ),
    Case(
        f"npm config set //registry.npmjs.org/:_authToken {NPM} && npm publish",
        (("npm_token", NPM),),
    ),
    Case(f"twine upload dist/* -u __token__ -p {PYPI}", (("pypi_token", PYPI),)),
    Case(f"huggingface-cli login --token {HUGGINGFACE}", (("huggingface_token", HUGGINGFACE),)),
    Case(
        f"kubectl --server https://10.0.0.1:6443 --token={JWT} get pods -n ci",
        (("jwt", JWT),),
    ),
    Case(
        f'curl -H "Authorization: Basic {BASIC_CREDENTIALS}" https://registry.internal/v2/_catalog',
        (("authorization_header", BASIC_CREDENTIALS),),
    ),
    Case(f"vault login token={VAULT_TOKEN}", (("secret_assignment", VAULT_TOKEN),)),
    Case(
        bash(
            f'curl -s -H "Authorization: Bearer {GITHUB_OAUTH}" '
            "https://api.github.com/repos/acme/api/pulls?state=open",
            "List open PRs",
        ),
        (("github_token", GITHUB_OAUTH),),
    ),
    Case(
        bash(f"mysql -uroot -p'{MYSQL_PASSWORD}x' -e 'show databases'"),
        (("cli_password", MYSQL_PASSWORD + "x"),),
    ),
    Case(
        f"helm upgrade --install db bitnami/postgresql --set auth.password={TF_PASSWORD}x",
        (("secret_assignment", TF_PASSWORD + "x"),),
    ),
    # -- JSON tool inputs and outputs --
    Case(
        json.dumps(
            {
                "file_path": "/home/dev/app/.env",
                "content": f"DATABASE_URL=postgres://app:{DB_PASSWORD}x@localhost:5432/app\n"
                f"DJANGO_SECRET_KEY={DJANGO_SECRET}\nDEBUG=false\n",
            }
        ),
        (("connection_string", DB_PASSWORD + "x"), ("secret_assignment", DJANGO_SECRET)),
    ),
    Case(
        json.dumps(
            {"url": f"https://ops:{URL_PASSWORD}@internal.example.com/admin", "prompt": "status?"}
        ),
        (("url_credentials", URL_PASSWORD),),
    ),
    Case(
        json.dumps(
            {
                "output": "Exit code: 0\nWall time: 0.1 seconds\nOutput:\n"
                f"AWS_ACCESS_KEY_ID={AWS_KEY_ID_2}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET_3}\n"
                "AWS_DEFAULT_REGION=eu-central-1\n",
                "metadata": {"exit_code": 0, "duration_seconds": 0.1},
            }
        ),
        (("aws_access_key_id", AWS_KEY_ID_2), ("aws_secret_key", AWS_SECRET_3)),
    ),
    Case(
        json.dumps({"username": "alice", "password": JSON_PASSWORD, "remember": True}),
        (("secret_assignment", JSON_PASSWORD),),
    ),
    Case(
        json.dumps({"api_key": API_KEY_HEX, "endpoint": "https://api.example.com/v2"}),
        (("secret_assignment", API_KEY_HEX),),
    ),
    Case(
        GCP_SERVICE_ACCOUNT,
        tuple(("gcp_private_key", line) for line in PKCS8_LINES[1:4]),
    ),
    Case(
        json.dumps(
            {
                "file_path": "/home/dev/app/config/settings.yaml",
                "content": "database:\n  host: db.internal\n  user: app\n"
                f"  password: {YAML_PASSWORD}\n  pool: 10\n",
            }
        ),
        (("secret_assignment", YAML_PASSWORD),),
    ),
    Case(
        json.dumps({"auths": {"ghcr.io": {"auth": DOCKER_AUTH}}}, indent=2),
        (("secret_assignment", DOCKER_AUTH),),
    ),
    Case(
        json.dumps({"ok": True, "access_token": SLACK_USER, "scope": "chat:write"}),
        (("slack_token", SLACK_USER),),
    ),
    Case(
        json.dumps({"client_id": "8841.apps.example.com", "client_secret": GOOGLE_CLIENT_SECRET}),
        (("secret_assignment", GOOGLE_CLIENT_SECRET),),
    ),
    Case(
        json.dumps({"headers": {"Authorization": f"Bearer {JWT_2}", "Accept": "application/json"}}),
        (("jwt", JWT_2),),
    ),
    # -- log bodies, prompts, error messages, URLs --
    Case(
        f'API Error: 401 {{"type":"error","error":{{"type":"authentication_error",'
        f'"message":"invalid x-api-key"}}}} key={ANTHROPIC_ADMIN}',
        (("anthropic_key", ANTHROPIC_ADMIN),),
    ),
    Case(
        f"my openai key is {OPENAI_PROJECT[:60]}{tok(40, B64URL)} can you check why it fails?",
        (("openai_key", OPENAI_PROJECT[:60]),),
    ),
    Case(
        f"use this github token {GITHUB_USER_TO_SERVER} to push the release branch",
        (("github_token", GITHUB_USER_TO_SERVER),),
    ),
    Case(
        f"POST https://hooks.slack.com/{SLACK_WORKFLOW} -> 200 OK (142 ms)",
        (("slack_webhook", SLACK_WORKFLOW),),
    ),
    Case(
        f"Error: connect ECONNREFUSED redis://:{REDIS_PASSWORD}x@10.0.0.5:6379",
        (("connection_string", REDIS_PASSWORD + "x"),),
    ),
    Case(
        "psycopg2.OperationalError: connection to server failed for DSN "
        f"'host=db.internal user=app password={DSN_PASSWORD} dbname=orders'",
        (("secret_assignment", DSN_PASSWORD),),
    ),
    Case(
        "GET https://api.example.com/v1/export?format=csv&access_token="
        f"{GOOGLE_OAUTH_ACCESS}&page=2",
        (("secret_assignment", GOOGLE_OAUTH_ACCESS),),
    ),
    Case(
        "https://acme-backups.s3.amazonaws.com/db/2026-11-22.tgz?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={AWS_KEY_ID}%2F20261122%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20261122T045429Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature={S3_SIGNATURE}",
        (("aws_access_key_id", AWS_KEY_ID), ("signed_url", S3_SIGNATURE)),
    ),
    Case(
        "https://acmebackups.blob.core.windows.net/db/orders.bak?sv=2022-11-02&ss=b&srt=o&sp=r"
        f"&se=2026-12-01T00:00:00Z&st=2026-11-22T00:00:00Z&spr=https&sig={AZURE_SAS_SIG}",
        (("signed_url", AZURE_SAS_SIG),),
    ),
    Case(
        f"Cookie: session={JWT_2}; theme=dark; lang=en",
        (("jwt", JWT_2),),
    ),
    Case(
        f"ftp://deploy:{FTP_PASSWORD}@files.example.com/upload/release-2.4.1.zip",
        (("url_credentials", FTP_PASSWORD),),
    ),
    Case(
        f"jdbc:mysql://app:{MYSQL_PASSWORD}j@db.internal:3306/orders?useSSL=true",
        (("connection_string", MYSQL_PASSWORD + "j"),),
    ),
    Case(
        f"amqps://svc:{AMQP_PASSWORD}@mq.internal:5671/orders",
        (("connection_string", AMQP_PASSWORD),),
    ),
    Case(
        "Server=tcp:acme.database.windows.net,1433;Initial Catalog=orders;User ID=app;"
        f"Password={ADO_PASSWORD};Encrypt=True;Connection Timeout=30;",
        (("connection_string", ADO_PASSWORD),),
    ),
    Case(
        f"pgbouncer: host=db.internal,port=6432,user=app,password={DSN_PASSWORD}q,dbname=orders",
        (("secret_assignment", DSN_PASSWORD + "q"),),
    ),
    Case(
        f"db: {{host: db.internal, user: app, password: {YAML_PASSWORD}f, port: 5432}}",
        (("secret_assignment", YAML_PASSWORD + "f"),),
    ),
    # -- files: .env, PEM, kubeconfig, CI, code --
    Case(
        f"# production\nDATABASE_HOST=db.internal\nDATABASE_PASSWORD={ENV_PASSWORD}x\n"
        f"SENDGRID_API_KEY={SENDGRID}\nSTRIPE_SECRET_KEY={STRIPE_TEST}\n"
        f"SMTP_PASSWORD='{SMTP_PASSWORD}'\n",
        (
            ("secret_assignment", ENV_PASSWORD + "x"),
            ("secret_assignment", SENDGRID),
            ("stripe_key", STRIPE_TEST),
            ("secret_assignment", SMTP_PASSWORD),
        ),
    ),
    Case(
        "$ cat ~/.ssh/deploy_key\n" + RSA_KEY,
        tuple(("private_key", line) for line in RSA_LINES[::6]),
    ),
    Case(OPENSSH_KEY, tuple(("private_key", line) for line in OPENSSH_LINES[::3])),
    Case(
        json.dumps({"file_path": "/home/dev/certs/ec.key", "content": EC_KEY_ESCAPED}),
        (("private_key", EC_LINES[0]),),
    ),
    Case(PGP_KEY, tuple(("private_key", line) for line in PGP_LINES[::5])),
    Case(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n"
        "  name: prod\nusers:\n- name: admin\n  user:\n"
        f"    client-certificate-data: {KUBE_CLIENT_CERT}\n"
        f"    client-key-data: {KUBE_CLIENT_KEY}\n",
        (("private_key", KUBE_CLIENT_KEY[:80]), ("private_key", KUBE_CLIENT_KEY[-60:])),
    ),
    Case(
        f"users:\n- name: ci\n  user:\n    token: {JWT}\n",
        (("jwt", JWT),),
    ),
    Case(
        f"//registry.npmjs.org/:_authToken={NPM}\nalways-auth=true\n",
        (("npm_token", NPM),),
    ),
    Case(
        f"[pypi]\n  username = __token__\n  password = {PYPI}\n",
        (("pypi_token", PYPI),),
    ),
    Case(
        f"machine api.heroku.com\n  login dev@example.com\n  password {NETRC_PASSWORD}\n"
        f"machine git.heroku.com login dev@example.com password {NETRC_PASSWORD}\n",
        (("secret_assignment", NETRC_PASSWORD),),
    ),
    Case(
        f"env:\n  NODE_ENV: production\n  NPM_TOKEN: {NPM}\n",
        (("npm_token", NPM),),
    ),
    Case(
        f"services:\n  db:\n    image: postgres:16\n    environment:\n"
        f"      - POSTGRES_PASSWORD={COMPOSE_PASSWORD}\n      - POSTGRES_DB=orders\n",
        (("secret_assignment", COMPOSE_PASSWORD),),
    ),
    Case(
        f'db_password = "{TF_PASSWORD}"\nregion      = "eu-central-1"\n',
        (("secret_assignment", TF_PASSWORD),),
    ),
    Case(
        f"spring.datasource.url=jdbc:postgresql://db:5432/orders\n"
        f"spring.datasource.password={SPRING_PASSWORD}\n",
        (("secret_assignment", SPRING_PASSWORD),),
    ),
    Case(
        f'from openai import OpenAI\n\nclient = OpenAI(api_key="{OPENAI_LEGACY}")\n',
        (("openai_key", OPENAI_LEGACY),),
    ),
    Case(f'import stripe\nstripe.api_key = "{STRIPE_TEST}"\n', (("stripe_key", STRIPE_TEST),)),
    Case(
        f'const firebaseConfig = {{\n  apiKey: "{GOOGLE_2}",\n'
        '  authDomain: "acme.firebaseapp.com",\n};',
        (("google_api_key", GOOGLE_2),),
    ),
    Case(
        f'\ttoken := "{GITHUB_PAT_2}"\n\tclient := github.NewClient(nil)',
        (("github_token", GITHUB_PAT_2),),
    ),
    Case(
        f'headers = {{"Authorization": "Basic {BASIC_CREDENTIALS}", "Accept": "*/*"}}',
        (("authorization_header", BASIC_CREDENTIALS),),
    ),
    Case(
        f"Proxy-Authorization: Basic {b64(b'proxyuser:' + tok(16).encode())}\r\nHost: example.com",
        (("authorization_header", b64(b"proxyuser:")[:8]),),
    ),
    Case(f"SLACK_APP_TOKEN={SLACK_APP}", (("slack_token", SLACK_APP),)),
    Case(f"GITLAB_DEPLOY_TOKEN={GITLAB_DEPLOY}", (("gitlab_token", GITLAB_DEPLOY),)),
    Case(
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=acme;"
        f"AccountKey={AZURE_ACCOUNT_KEY_2};EndpointSuffix=core.windows.net",
        (("azure_storage_key", AZURE_ACCOUNT_KEY_2),),
    ),
    # -- attributes: the key says the whole value is a credential --
    Case(DB_ATTR_PASSWORD, (("secret_attribute", DB_ATTR_PASSWORD),), key="db.password"),
    Case(
        f"Bearer {tok(40, B64URL)}x",
        (("secret_attribute", "Bearer "),),
        key="http.request.header.authorization",
    ),
    Case(
        f"sessionid={COOKIE_SESSION}; csrftoken={tok(32)}",
        (("secret_attribute", COOKIE_SESSION),),
        key="http.request.header.cookie",
    ),
    Case(CUSTOM_HEADER_KEY, (("secret_attribute", CUSTOM_HEADER_KEY),), key="x-api-key"),
    Case(f"{GITHUB_PAT}", (("github_token", GITHUB_PAT),), key="tool_parameters.note"),
)

# -- clean values -------------------------------------------------------------------------------

_id_rng = random.Random(7)
GIT_SHAS = [hashlib.sha1(f"commit {i}".encode()).hexdigest() for i in range(12)]
SHORT_SHAS = [sha[:7] for sha in GIT_SHAS[:6]]
UUIDS = [str(uuid.UUID(int=_id_rng.getrandbits(128), version=4)) for i in range(12)]
UUID7S = [
    "01a2019b-153d-7720-b50e-f5249e2b83da",
    "01a2019b-1570-7fe3-8555-6ffff0298dcf",
    "01a2019b-15f6-7152-9226-0d7db02cd5a7",
]
SHA256S = [hashlib.sha256(f"user {i}".encode()).hexdigest() for i in range(6)]
BASE64_BLOBS = [
    b64(b"hello world"),
    b64(b'{"type":"text","text":"Summarize the diff"}'),
    b64(b"\x89PNG\r\n\x1a\n" + bytes(range(40))),
    b64(b"\x1f\x8b\x08\x00" + bytes(range(60, 120))),
    b64("Grüße aus Köln — build passed".encode()),
    b64(json.dumps({"event": "deploy", "ok": True}).encode()),
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENDQVRlZ0F3SUJBZ0lVZkV4YW1wbGU=",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAGklEQVR42mNk",
    "H4sIAAAAAAAAA+3OMQ6AIBAF0Y/1c2m8oq3x0ey8AAA=",
    "dGVzdF9kZWNvZGUucHk6OnRlc3Rfc3Bhbl9maWVsZHMgUEFTU0VE",
]

CLEAN_VALUES: tuple[str, ...] = (
    # real attribute values from the Claude Code / Codex captures
    "claude-code",
    "codex_exec",
    "2.1.330",
    "0.169.0",
    "claude-opus-5-5",
    "gpt-5.4",
    "gpt-5.6-luna",
    "firstParty",
    "test123",
    "claude-bash",
    "b08ba7ad-8bff-4a48-8d31-9ae659a67575",
    "bfdb0cfdf65c3f9762702b17894f61f6f82d56ad5d7db55bf2c403d08fd16bec",
    "toolu_mock_63634a5c4eef43e3",
    "req_mock_7e0a4636380e",
    "<REDACTED>",
    "[REDACTED]",
    "authorization",
    "configured",
    "direct_keyring",
    "codex_app_server::request_processors::thread_processor",
    "codex_login::auth::manager",
    "login/src/auth/manager.rs",
    "exec-server/src/local_file_system.rs",
    "event otel/src/events/session_telemetry.rs:1206",
    'Thread { thread_id: "01a2019b-153d-7720-b50e-f5249e2b83da" }',
    "claude_code.token.usage",
    "codex.turn.token_usage",
    "Number of tokens used",
    "tokens",
    "2026-11-22T04:54:29.941Z",
    "read-only",
    "never",
    "cacheCreation",
    "Mock OpenAI",
    "/responses",
    "6.18.44-fc-v669",
    "tool.blocked_on_user",
    "claude_code.tool_result",
    "codex.sse_event",
    "response.output_item.added",
    "thread/items/list",
    "559932fe5f722b82",
    "cc-plugin-privacy",
    "none",
    "true",
    "0.0008320000000000001",
    "1795323269915000000",
    "394",
    # Bash commands
    "git status --short",
    "git log --oneline -n 20",
    "git diff HEAD~1 -- receiver/processors/redact.py",
    "git push -u origin feature/redaction",
    "git checkout -b fix/token-refresh",
    "git commit -m 'Rotate the token cache on expiry'",
    "git clone git@github.com:acme/api.git",
    "git rebase -i HEAD~3",
    "git config --global user.email dev@example.com",
    "git fetch origin main && git merge --ff-only origin/main",
    "ls -la ~/.ssh/",
    "ls -la /home/dev/realcap/work",
    "cat ~/.aws/config",
    "cat README.md | head -n 40",
    "pytest tests/test_redact.py -q -x",
    "python -m pytest -k 'password and not slow' -q",
    ".venv/bin/ruff check . && .venv/bin/ruff format --check .",
    "npm install && npm run build",
    "npm run test -- --watch=false",
    "pnpm add -D @types/node",
    "cargo build --release --target x86_64-unknown-linux-musl",
    "go test ./... -run TestToken -count=1",
    "make -j4 all",
    "docker compose up -d db redis",
    "docker run --rm -p 8080:80 -u 1000:1000 nginx:1.27",
    "docker build --secret id=npmrc,src=$HOME/.npmrc -t acme/web:dev .",
    "docker login -u deploy --password-stdin ghcr.io < /run/secrets/ghcr",
    "docker ps --format '{{.Names}} {{.Status}}'",
    "kubectl get pods -n ci -o wide",
    "kubectl logs deploy/api -n prod --since=10m",
    "kubectl get secret db-creds -o jsonpath='{.data.password}' | base64 -d | wc -c",
    "kubectl create secret tls web --cert=tls.crt --key=tls.key",
    'kubectl create secret generic db --from-literal=password="$DB_PASSWORD"',
    "helm upgrade --install api ./chart --set image.tag=2.4.1 --set auth.password=$PG_PASSWORD",
    "terraform plan -var-file=prod.tfvars -out plan.bin",
    'terraform apply -var="db_password=${TF_VAR_db_password}"',
    "aws sts get-caller-identity",
    "aws s3 cp s3://acme-backups/db/2026-11-22.tgz /tmp/",
    "aws configure list",
    "gcloud auth activate-service-account --key-file=/tmp/sa.json",
    "gcloud config set project acme-prod-4711",
    "az account show --output table",
    "ssh -p 2222 deploy@bastion.example.com 'uptime'",
    "ssh-keygen -t ed25519 -C dev@example.com -f ~/.ssh/id_ed25519",
    "ssh-add ~/.ssh/id_ed25519",
    "openssl genrsa -out key.pem 2048",
    "openssl x509 -in cert.pem -noout -subject -dates",
    "gpg --list-secret-keys --keyid-format=long",
    "grep -rn 'password' src/ --include=*.py",
    'grep -rn "api_key=" .',
    "rg -n 'token' --type py receiver/",
    "rg --files-with-matches SECRET_KEY",
    "export GITHUB_TOKEN=$(gh auth token)",
    "echo $GITHUB_TOKEN | gh auth login --with-token",
    'curl -H "Authorization: Bearer $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/models',
    'curl -H "Authorization: Bearer ${OPENAI_API_KEY}" https://api.openai.com/v1/models',
    'curl -u "$JENKINS_USER:$JENKINS_TOKEN" https://jenkins.internal/api/json',
    "curl -sS https://api.github.com/repos/acme/api/releases/latest | jq -r .tag_name",
    "curl -X POST http://127.0.0.1:4318/v1/traces -H 'Content-Type: application/json' -d @s.json",
    "curl http://localhost:3000/health",
    "wget -q https://github.com/acme/cli/releases/download/v1.2.0/cli-linux-amd64.tar.gz",
    "pg_dump --no-password -h db.internal -U app orders > /tmp/orders.sql",
    "psql postgresql://app@localhost:5432/orders -c 'select count(*) from orders'",
    "mysql --defaults-extra-file=~/.my.cnf -e 'select 1'",
    "mysql -h db.internal -P 3306 -u app -p orders",
    "redis-cli -h cache.internal -p 6379 INFO memory",
    "export PATH=$HOME/.local/bin:$PATH",
    "export AWS_PROFILE=prod AWS_REGION=eu-central-1",
    "export NODE_OPTIONS=--max-old-space-size=4096",
    "PWD=/home/dev/realcap/work OLDPWD=/home/dev",
    "cd /home/dev/realcap/work && codex exec --skip-git-repo-check 'say hi'",
    "OTEL_RESOURCE_ATTRIBUTES=cc.launch.id=test123,launched.by=claude-bash codex exec 'say hi'",
    "find . -name '*.pem' -newer build.log -print",
    "tar czf backup.tgz --exclude=node_modules --exclude=.venv .",
    "chmod 600 ~/.config/acme/credentials",
    "sed -i 's/token_count=0/token_count=1/' config.ini",
    "python scripts/rotate_keys.py --dry-run --region eu-central-1",
    "python -c 'import secrets; print(len(secrets.token_hex(32)))'",
    "uv pip install -r requirements.txt",
    "pip install 'passlib[bcrypt]==1.7.4'",
    "systemctl status otel-receiver --no-pager",
    "journalctl -u otel-receiver --since '10 min ago' | grep -i error",
    "head -c 200 /dev/urandom | sha256sum",
    "du -sh ~/.cache/* | sort -h | tail",
    "vault kv get -field=username secret/ci/db",
    "vault login -method=oidc role=dev",
    "op read op://Private/db/password --no-newline > /dev/null",
    "pass show work/vpn >/dev/null && echo ok",
    "htpasswd -B -c /etc/nginx/.htpasswd admin",
    "passwd --status dev",
    "sudo -k && sudo -v",
    "git grep -n 'secret_key' -- '*.py'",
    "echo 'password: <your password here>' >> config.example.yml",
    "make test TOKEN_LIMIT=4096",
    "lsof -i :4317",
    "nc -zv 127.0.0.1 8123",
    'for f in *.log; do gzip "$f"; done',
    "awk -F: '{print $1}' /etc/passwd | sort | head",
    "jq '.resourceSpans[].scopeSpans[].spans | length' traces.json",
    # paths
    "/home/dev/realcap/work/receiver/processors/redact.py",
    "/home/dev/.claude/settings.json",
    "/home/dev/.codex/config.toml",
    "/etc/ssl/certs/ca-certificates.crt",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/run/secrets/db_password",
    "~/.ssh/id_ed25519.pub",
    "src/auth/token_refresh.ts",
    "tests/fixtures/passwords_test.go",
    "C:\\Users\\dev\\AppData\\Roaming\\npm\\node_modules",
    "./node_modules/.bin/tsc",
    "app/models/api_key.rb",
    "internal/secrets/manager.go",
    # model names, versions, enums
    "claude-sonnet-4-5-20250929",
    "claude-3-5-haiku-latest",
    "gpt-4o-2024-08-06",
    "o3-mini",
    "gemini-2.5-pro",
    "text-embedding-3-large",
    "us.anthropic.claude-opus-4-1-20250805-v1:0",
    "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "v2.4.1",
    "1.45.2",
    "26.9.0",
    "linux",
    "amd64",
    "darwin-arm64",
    "INFO",
    "ERROR",
    "Unset",
    "interaction",
    "llm_request",
    "tool.execution",
    "Bash",
    "Read",
    "Edit",
    "WebFetch",
    "accept",
    "reject",
    "USD",
    "tokens/s",
    "ms",
    "{request}",
    # ids and numbers
    *GIT_SHAS,
    *SHORT_SHAS,
    *UUIDS,
    *UUID7S,
    *SHA256S,
    "01HZX3K8Q2V9B7N4M6T1R5W0YE",
    "req_011CVZ6pXqYQ7vmq3fK4r9sT",
    "msg_01XFDUDYJgAACzvnptvVoYEL",
    "chatcmpl-AvRj9dP3iWl7qkE2mBnX",
    "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452e3a2a1",
    "arn:aws:iam::123456789012:role/deploy",
    "arn:aws:s3:::acme-backups/db/*",
    "123456789012",
    "sha256:3f1a9b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8",
    "ghcr.io/acme/web@sha256:9c0e3a7b5d1f2e4c6a8b0d2f4e6a8c0b2d4f6e8a0c2b4d6f8e0a2c4b6d8f0e2a",
    "4096",
    "0.25",
    "-1",
    "1e-7",
    "NaN",
    # base64 that is not a secret
    *BASE64_BLOBS,
    # prose, errors, prompts
    "The password must be at least 12 characters long.",
    "Forgot your password? Reset it at https://example.com/reset",
    "Enter passphrase for key '/home/dev/.ssh/id_ed25519':",
    "Use a Bearer token in the Authorization header to call the API.",
    "Set OPENAI_API_KEY in your environment before running the eval.",
    "Claude used 12,345 tokens in this session.",
    "The token expired at 10:32; the client refreshed it automatically.",
    "rate limit: 40,000 input tokens per minute",
    "Error: 401 Unauthorized (the API key is missing or invalid)",
    "error: authentication required: set ANTHROPIC_API_KEY or run claude login",
    "warning: secret scanning found 0 new alerts",
    "Please rotate the staging database password before Friday.",
    "Refactor the token bucket rate limiter to use monotonic time",
    "Why does `git push` ask for my password every time?",
    "Add a --password-file option to the backup command",
    "Summarize the changes in receiver/processors/redact.py and explain the pre-filter.",
    "Write tests for the key rotation job; keys older than 90 days must be disabled.",
    "The session key is derived per connection, see RFC 8446 section 7.1.",
    "Bypass the cache with --no-cache when the lockfile changes.",
    "compass: rotated 15 degrees",
    "Exit code: 0\nWall time: 0.4 seconds\nOutput:\nhi\n",
    'Exit code 1\nnpm ERR! code E401\nnpm ERR! Unable to authenticate, need: Basic realm="GitHub"',
    "fatal: Authentication failed for 'https://github.com/acme/api.git/'",
    "remote: Invalid username or token. Password authentication is not supported.",
    'WWW-Authenticate: Bearer realm="api", error="invalid_token"',
    "Successfully installed passlib-1.7.4 cryptography-43.0.1",
    "PASSED tests/test_auth.py::test_password_hashing_uses_argon2",
    "FAILED tests/test_tokens.py::test_refresh_token_rotation - AssertionError",
    "test_decode.py::test_span_fields PASSED                                [ 12%]",
    'Traceback (most recent call last):\n  File "app.py", line 12, in <module>\n'
    "    token = load_token()\nFileNotFoundError: token.json",
    # JSON tool inputs and outputs
    json.dumps(
        {
            "file_path": "/home/dev/realcap/work/receiver/processors/redact.py",
            "offset": 1,
            "limit": 200,
        }
    ),
    json.dumps({"pattern": "password", "path": "src", "output_mode": "files_with_matches"}),
    json.dumps({"pattern": "**/*token*.py"}),
    json.dumps({"command": "git status --short", "description": "Show working tree status"}),
    json.dumps({"command": "pytest -q tests/test_auth.py", "timeout": 120000}),
    json.dumps(
        {
            "file_path": "/home/dev/app/auth.py",
            "old_string": "def check(password):",
            "new_string": "def check(password: str) -> bool:",
        }
    ),
    json.dumps({"url": "https://docs.anthropic.com/en/api/getting-started", "prompt": "auth?"}),
    json.dumps({"token_type": "Bearer", "expires_in": 3600, "scope": "read:org"}),
    json.dumps({"input_tokens": 123, "output_tokens": 17, "cache_read_input_tokens": 0}),
    json.dumps({"max_tokens": 4096, "model": "claude-opus-5-5", "temperature": 0}),
    json.dumps({"password": "", "username": "", "remember": False}),
    json.dumps({"password": None, "api_key": None}),
    json.dumps({"password": "********", "token": "[REDACTED]"}),
    json.dumps({"password": "${DB_PASSWORD}", "token": "{{ secrets.API_TOKEN }}"}),
    json.dumps({"name": "reset_password", "description": "Send a password reset email"}),
    json.dumps({"next_token": "AAMA-EFRSURBSGk4", "items": []}),
    json.dumps({"secret_scanning": {"status": "enabled"}, "push_protection": True}),
    json.dumps({"auth": {"type": "oauth", "required": True}}),
    json.dumps({"command": ["bash", "-lc", "ls -la"], "workdir": "/home/dev/realcap/work"}),
    json.dumps({"type": "function_call_output", "output": "total 8\ndrwxr-xr-x 2 dev dev 4096 ."}),
    json.dumps({"key": "user:1842:profile", "ttl": 3600}),
    json.dumps({"sort_key": "created_at", "order": "desc"}),
    '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]}}]}',
    # config files and code that only talk about secrets
    "OPENAI_API_KEY=your-api-key-here\nDATABASE_PASSWORD=changeme\nDEBUG=true\n",
    "API_KEY=<your key>\nSECRET=\nTOKEN=xxxxxxxx\n",
    "password: ${DB_PASSWORD}\nuser: app\nhost: db.internal\n",
    "token: ${{ secrets.GITHUB_TOKEN }}\nfetch-depth: 0\n",
    "password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n",
    "[client]\nuser = app\npassword =\nhost = db.internal\n",
    "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n"
    "        name: db\n        key: password\n",
    "def authenticate(self, username: str, password: str) -> bool:\n    return check(password)",
    "if not password:\n    raise ValueError('password required')",
    "api_key = os.environ['OPENAI_API_KEY']",
    'password = getpass.getpass("Password: ")',
    "secret = secrets.token_hex(32)",
    "token = request.headers.get('Authorization', '').removeprefix('Bearer ')",
    "const token = localStorage.getItem('token');",
    'SECRET_KEY = env("DJANGO_SECRET_KEY")',
    "client = OpenAI(api_key=api_key)",
    "login(username=username, password=password)",
    "self.password = password",
    "password = self.password",
    "interface Credentials { username: string; password: string; token?: string }",
    # code from real libraries (aiohttp, requests, grpc, testcontainers) that names credentials
    "self._default_auth = auth",
    "auth=auth,",
    "proxy, auth = val",
    "auth: AuthType",
    "TOKEN = CHAR ^ CTL ^ SEPARATORS",
    "auth = await self._loop.run_in_executor(None, self._get_auth, url)",
    '_SEND_MESSAGE_TOKEN = "send_message"',
    "f\"PGPASSWORD='{escaped_single_password}' psql --username {self.username} -c 'select 1'\"",
    'return f"valkey://:{self.password}@{host}:{port}"',
    'f"DefaultEndpointsProtocol=http;AccountName={self.name};AccountKey={self.account_key};"',
    "token_count = len(tokenizer.encode(text))",
    "max_tokens=4096 temperature=0.2 top_p=0.9",
    "headers['Authorization'] = f'Bearer {token}'",
    'fetch(url, { headers: { Authorization: "Bearer " + token } })',
    "# Set the API token in ~/.config/acme/token (mode 0600)",
    '<input type="password" name="password" autocomplete="current-password">',
    "https://example.com/reset-password?email=dev%40example.com",
    "https://github.com/acme/api/pull/1842/files",
    "http://127.0.0.1:8123/?query=SELECT%201",
    "https://api.example.com/v1/items?page_token=CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA1",
    "postgres://app@db.internal:5432/orders",
    "redis://cache.internal:6379/0",
    "https://oauth2:${GITLAB_TOKEN}@gitlab.com/acme/app.git",
    "mongodb://localhost:27017/test",
    "s3://acme-backups/db/2026-11-22.tgz",
    "git@github.com:acme/api.git",
    "ssh://git@github.com:22/acme/api.git",
    "file:///home/dev/report.html",
    "mailto:security@example.com",
    "http://localhost:3000/callback?code=&state=xyz",
)

# -- people's passwords ---------------------------------------------------------------------------
#
# What people type into an agent's Bash tool, not what providers issue: a word or two (many of
# them containing pass, secret, key, token or auth: Monkey, Turkey, Keyboard, Passport), with
# digits (a year, a birthday, 123) and often a symbol, sometimes in leetspeak. Each password is
# put in one of the contexts such passwords occur in, with the detector that must name it.

_people_rng = random.Random(18)

PASSWORD_WORDS = (
    # containing a credential-like word: a placeholder check by substring lets these through
    *("Monkey", "Turkey", "Keyboard", "Donkey", "Whiskey", "Hockey", "Jockey", "Keystone"),
    *("Passport", "Password", "Passion", "Compass", "Bypass", "Passcode", "Secret", "Secretary"),
    *("Token", "Tokyo", "Author", "Authentic", "Keychain", "Turnkey", "Pass", "Auth"),
    # the usual
    *("Sunshine", "Dragon", "Summer", "Winter", "Autumn", "Spring", "Football", "Princess"),
    *("Shadow", "Master", "Hunter", "Letmein", "Welcome", "Qwerty", "Superman", "Batman"),
    *("Freedom", "Charlie", "Pokemon", "Liverpool", "Barcelona", "Berlin", "Coffee", "Cookie"),
    *("Banana", "Pepper", "Ginger", "Kitten", "Tiger", "Falcon", "Phoenix", "Rocket", "Galaxy"),
)
SYMBOLS = "!@#%*?.+_-~&^"
_LEET = str.maketrans({"a": "@", "o": "0", "e": "3", "i": "1", "s": "5"})


def human_password(word: str) -> str:
    """One of the shapes people give passwords, built on ``word``."""
    rng = _people_rng
    year, number = str(rng.randrange(1970, 2027)), str(rng.randrange(1, 1000))
    symbol, other = rng.choice(SYMBOLS), rng.choice(PASSWORD_WORDS)
    shapes = (
        word + year,  # Monkey2024
        word + number + symbol,  # Turkey77!
        word.lower() + number,  # keyboard123
        word[0] + word[1:].translate(_LEET) + number,  # P@55p0rt12
        word + symbol + other + number,  # Secret#Falcon9
        word + other + year[2:] + symbol,  # MonkeyTiger24!
        f"{word.lower()}-{other.lower()}-{number}",  # monkey-tiger-42
        word.upper() + symbol + year,  # TOKEN_2020
        number + word.lower() + symbol,  # 42monkey!
    )
    return rng.choice(shapes)


# (template, detector). {pw} is the password; {url_pw} the same, percent-encoded as a URL must.
PASSWORD_CONTEXTS: tuple[tuple[str, str], ...] = (
    ("password={pw}", "secret_assignment"),
    ("export DB_PASSWORD={pw}", "secret_assignment"),
    ("export REDIS_PASSWORD='{pw}' && ./bin/worker --queue default", "secret_assignment"),
    ("DB_HOST=db.internal\nDB_USER=app\nDB_PASS={pw}\nDB_NAME=orders\n", "secret_assignment"),
    ("SMTP_HOST=smtp.example.com\nSMTP_PASSWORD={pw}\nSMTP_PORT=587\n", "secret_assignment"),
    ("MYSQL_PWD={pw} mysqldump -u root shop > /tmp/shop.sql", "secret_assignment"),
    ("PGPASSWORD={pw} psql -h db.internal -U app -d orders -c 'select 1'", "secret_assignment"),
    ("docker run -d -e MYSQL_ROOT_PASSWORD={pw} -p 3306:3306 mysql:8.4", "secret_assignment"),
    ("cat > .env <<'EOF'\nPOSTGRES_USER=app\nPOSTGRES_PASSWORD={pw}\nEOF", "secret_assignment"),
    ("spring.datasource.username=app\nspring.datasource.password={pw}\n", "secret_assignment"),
    ("database:\n  host: db.internal\n  user: app\n  password: {pw}\n", "secret_assignment"),
    ('redis:\n  url: redis://cache:6379\n  password: "{pw}"\n', "secret_assignment"),
    ('{{"username": "alice", "password": "{pw}", "remember": true}}', "secret_assignment"),
    ("helm install db bitnami/postgresql --set auth.password={pw}", "secret_assignment"),
    ("wget --user=ci --password={pw} https://artifacts.internal/build.tgz", "secret_assignment"),
    ("mysql -h db.internal -u app --password={pw} orders", "secret_assignment"),
    ("mysql -u root -p{pw} shop", "cli_password"),
    ("mysql -h 127.0.0.1 -uroot -p'{pw}' -e 'show databases'", "cli_password"),
    ("curl -u admin:{pw} https://jenkins.internal/api/json", "cli_password"),
    ("curl -s --user deploy:{pw} -X POST https://ci.internal/job/x/build", "cli_password"),
    ("redis-cli -h cache.internal -a {pw} ping", "cli_password"),
    ("redis-cli -a '{pw}' --no-auth-warning INFO memory", "cli_password"),
    ("sshpass -p '{pw}' ssh -o StrictHostKeyChecking=no deploy@10.0.3.4 uptime", "cli_password"),
    ("docker login -u deploy -p {pw} registry.example.com", "cli_password"),
    ("podman login -u ci -p '{pw}' quay.io", "cli_password"),
    ("helm registry login registry.example.com -u ci -p {pw}", "cli_password"),
    ("htpasswd -bc /etc/nginx/.htpasswd admin {pw}", "cli_password"),
    ("htpasswd -nb admin '{pw}' >> auth/users", "cli_password"),
    ("echo '{pw}' | sudo -S apt-get install -y nginx", "cli_password"),
    ("echo {pw} | sudo -S systemctl restart postgresql", "cli_password"),
    ("mongosh -u admin -p '{pw}' --authenticationDatabase admin", "cli_password"),
    ("mongodump -u backup -p {pw} --out /var/backups/mongo", "cli_password"),
    ('psql "host=db.internal user=app password={pw} dbname=orders"', "secret_assignment"),
    ("psql postgresql://app:{url_pw}@db.internal:5432/orders", "connection_string"),
    ("mysql://root:{url_pw}@localhost:3306/shop", "connection_string"),
    ("redis-cli -u redis://:{url_pw}@cache.internal:6379/0 ping", "connection_string"),
    ("amqp://guest:{url_pw}@rabbit.internal:5672/", "connection_string"),
    ("git clone https://bob:{url_pw}@github.com/acme/api.git", "url_credentials"),
    (
        "git remote set-url origin https://dev:{url_pw}@gitlab.example.com/g/p.git",
        "url_credentials",
    ),
    ("ftp://upload:{url_pw}@files.example.com/in/", "url_credentials"),
    ("https://admin:{url_pw}@grafana.internal/api/dashboards", "url_credentials"),
    ('export DB_PASSWORD="{pw}"', "secret_assignment"),
    ('{{"db": {{"host": "db", "user": "app", "password": "{pw}"}}}}', "secret_assignment"),
    ("services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD={pw}\n", "secret_assignment"),
    ("[client]\nuser = root\npassword = {pw}\n", "secret_assignment"),
    (
        "openssl pkcs12 -export -in c.pem -inkey k.pem -out c.p12 -passout pass:{pw}",
        "secret_assignment",
    ),
    ("kubectl create secret generic db --from-literal=password='{pw}'", "secret_assignment"),
    ('conn = psycopg2.connect(host="db", user="app", password="{pw}")', "secret_assignment"),
    ("mysql -e \"CREATE USER 'app'@'%' IDENTIFIED BY '{pw}'\"", "sql_password"),
    ("psql -c \"ALTER ROLE app WITH PASSWORD '{pw}'\"", "sql_password"),
    ("echo -n '{pw}' | docker login ghcr.io -u ci --password-stdin", "cli_password"),
    ("sudo -S true <<< '{pw}'", "cli_password"),
    ("smbclient //fs.internal/share -U alice%{pw} -c 'ls'", "cli_password"),
    ("zip -P '{pw}' backup.zip db.sql", "cli_password"),
    ("7z a -p{pw} -mhe=on backup.7z data/", "cli_password"),
    ("ldapsearch -x -D cn=admin,dc=acme,dc=org -w '{pw}' -b dc=acme,dc=org", "cli_password"),
    ("sqlcmd -S db.internal -U sa -P '{pw}' -Q 'SELECT 1'", "cli_password"),
    ('os.environ["DB_PASSWORD"] = "{pw}"', "secret_assignment"),
    ("define('DB_PASSWORD', '{pw}');", "secret_assignment"),
    ('DataSourceBuilder.create().username("app").password("{pw}").build()', "secret_assignment"),
    ("<server>\n  <id>nexus</id>\n  <password>{pw}</password>\n</server>", "secret_assignment"),
    (
        "curl -d 'user[login]=alice&user[password]={url_pw}' https://app.internal/session",
        "secret_assignment",
    ),
    ("DATABASES = {{'default': {{'USER': 'app', 'PASSWORD': '{pw}'}}}}", "secret_assignment"),
    ("sudo mount -t cifs //fs/share /mnt -o username=alice,password={pw}", "secret_assignment"),
    ("pip install -i https://ci:{url_pw}@pypi.internal/simple acme-tools", "url_credentials"),
    ("export HTTPS_PROXY=http://bob:{url_pw}@proxy.internal:3128", "url_credentials"),
)


def _password_cases() -> tuple[Case, ...]:
    """Every word four times, each in a context taken in turn; every third case wrapped as
    Claude's Bash input and every third as Codex's shell arguments (JSON-escaped)."""
    cases = []
    for i, word in enumerate(PASSWORD_WORDS * 4):
        password = human_password(word)
        template, detector = PASSWORD_CONTEXTS[i % len(PASSWORD_CONTEXTS)]
        url_password = urllib.parse.quote(password, safe="")
        value = template.format(pw=password, url_pw=url_password)
        value = (value, bash(value), codex_args(value))[i % 3]
        secret = url_password if "{url_pw}" in template else password
        cases.append(Case(value, ((detector, secret),)))
    return tuple(cases)


PASSWORD_CASES = _password_cases()

# The six from issue 18, stored in clear before round 2.
ISSUE_18_CASES = (
    Case("password=SuperSecret123", (("secret_assignment", "SuperSecret123"),)),
    Case("password=MyPassw0rd2024", (("secret_assignment", "MyPassw0rd2024"),)),
    Case("mysql -u root -pMonkey2024 db", (("cli_password", "Monkey2024"),)),
    Case("curl -u admin:SuperSecret123 https://x", (("cli_password", "SuperSecret123"),)),
    Case("git clone https://bob:Passw0rd99@github.com/x/y", (("url_credentials", "Passw0rd99"),)),
    Case("redis-cli -a Hunter2Hunter2 ping", (("cli_password", "Hunter2Hunter2"),)),
)

# Real ways of passing a password that the detectors do not know (README, "What is not caught").
# They count against the corpus figure.
HARD_CASES = (
    Case(
        "echo 'db.internal:5432:orders:app:Winter2024!' >> ~/.pgpass",
        (("secret_assignment", "Winter2024!"),),
    ),
    Case("rabbitmqctl add_user app Monkey2024!", (("cli_password", "Monkey2024!"),)),
    Case(
        "keytool -genkeypair -alias app -keystore app.jks -storepass Keyboard99",
        (("cli_password", "Keyboard99"),),
    ),
)

# -- more clean values, generated -----------------------------------------------------------------
#
# The everyday neighbours of those passwords: the same tools run without a secret (prompting,
# reading a file or a variable), placeholders in every shape, prose and code about passwords,
# keys and tokens, logs, paths, ids, hashes and base64 that is not a secret. Templates filled
# from small vocabularies by a seeded generator.

_clean_rng = random.Random(1000)

FILL: dict[str, tuple[str, ...]] = {
    "host": ("db.internal", "cache.internal", "10.0.3.4", "api.example.com", "localhost"),
    "user": ("app", "deploy", "ci", "root", "admin", "alice", "bob", "postgres", "dev"),
    "port": ("5432", "3306", "6379", "27017", "8080", "443", "2222", "9000"),
    "db": ("orders", "shop", "analytics", "users", "billing"),
    "table": ("orders", "sessions", "api_keys", "tokens", "users", "passwords", "audit_log"),
    "repo": ("api", "web", "infra", "keyboard-shortcuts", "monkey-runner", "token-service"),
    "branch": ("main", "develop", "feature/token-refresh", "fix/password-reset", "feat/api-keys"),
    "registry": ("ghcr.io", "registry.example.com", "quay.io", "docker.io"),
    "service": ("nginx", "postgresql", "redis-server", "otel-receiver", "keycloak", "vault"),
    "secret_file": ("db-password", "registry-token", "api-key", "smtp-pass", "tls-key"),
    "secret_var": ("DB_PASSWORD", "REGISTRY_TOKEN", "API_KEY", "SUDO_PASS", "REDIS_PASSWORD"),
    "env": ("NODE_ENV", "LOG_LEVEL", "TOKEN_TTL", "PASSWORD_MIN_LENGTH", "KEY_ROTATION_DAYS"),
    "setting": ("production", "debug", "3600", "12", "90", "oauth", "vault", "true"),
    "redis_cmd": ("ping", "INFO memory", "KEYS 'session:*'", "DBSIZE", "GET token:ttl"),
    "dir": ("src/auth", "internal/token", "app/models", "lib/secrets", "tests", "docs"),
    "file": ("password.py", "store.go", "api_key.rb", "secrets.ts", "test_keyboard.py"),
    "kw": ("password", "token", "secret", "api_key", "monkey", "keyboard", "passport", "auth"),
    "thing": ("password", "API key", "access token", "secret", "passphrase", "SSH key"),
    "var": ("password", "api_key", "token", "secret", "auth_token", "client_secret", "passwd"),
    "camel": ("password", "apiKey", "authToken", "clientSecret", "accessToken", "dbPassword"),
    "ENV": ("DB_PASSWORD", "API_KEY", "AUTH_TOKEN", "CLIENT_SECRET", "SMTP_PASS", "MYSQL_PWD"),
    "n": tuple(str(n) for n in (1, 2, 3, 7, 12, 30, 42, 90, 128, 404, 2048)),
    "status": ("200", "201", "401", "403", "500"),
    "letter": ("K", "P", "Shift+P", "T", "S"),
}

CLEAN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "commands": (
        "git checkout {branch}",
        "git log --oneline -n {n} -- {dir}/{file}",
        "git push origin {branch}",
        "git clone https://github.com/acme/{repo}.git",
        "git clone git@github.com:acme/{repo}.git",
        "git remote add upstream https://{user}@github.com/acme/{repo}.git",
        "docker run --rm -p {port}:{port} -e {env}={setting} acme/{repo}:1.{n}",
        "docker login {registry}",
        "docker login -u {user} --password-stdin {registry} < /run/secrets/{secret_file}",
        'echo "${secret_var}" | docker login -u {user} --password-stdin {registry}',
        "cat /run/secrets/{secret_file} | docker login -u {user} --password-stdin {registry}",
        "mysql -h {host} -P {port} -u {user} -p {db}",
        'mysql -u {user} -p"${secret_var}" {db}',
        "mysql --defaults-extra-file=/etc/mysql/{user}.cnf {db} < migrations/{n}.sql",
        "psql -h {host} -p {port} -U {user} -d {db} -c 'select count(*) from {table}'",
        'psql "$DATABASE_URL" -f migrations/{n}_{table}.sql',
        'PGPASSWORD="${secret_var}" psql -h {host} -U {user} {db}',
        "PGPASSWORD=$(cat /run/secrets/{secret_file}) pg_dump -h {host} -U {user} {db}",
        "redis-cli -h {host} -p {port} {redis_cmd}",
        'redis-cli -a "${secret_var}" --no-auth-warning {redis_cmd}',
        "redis-cli --askpass -h {host} {redis_cmd}",
        "mongosh --host {host} --port {port} {db}",
        "mongosh -u {user} -p --authenticationDatabase admin {db}",
        "curl -sS 'https://{host}/api/v{n}/{table}?page={n}&per_page=50'",
        "curl -u {user} https://{host}/api/json",
        'curl -u "${secret_var}:" https://{host}/v1/{table}',
        'curl -H "Authorization: Bearer ${secret_var}" https://{host}/v1/{table}',
        "ssh -p {port} {user}@{host} 'systemctl status {service}'",
        "sshpass -f ~/.ssh/{secret_file} ssh {user}@{host} uptime",
        "sshpass -e ssh {user}@{host} uptime",
        "htpasswd -c /etc/nginx/.htpasswd {user}",
        "htpasswd -B /etc/apache2/.htpasswd {user}",
        "htpasswd -bv /etc/nginx/.htpasswd {user} $PASS",
        "sudo systemctl restart {service}",
        "echo 'deb https://apt.example.com stable main' | sudo tee /etc/apt/sources.list.d/x.list",
        'echo "$SUDO_PASSWORD" | sudo -S systemctl reload {service}',
        "echo {n} | sudo tee /proc/sys/vm/overcommit_memory",
        "kubectl get secret {secret_file} -o jsonpath='{{.data.password}}' | base64 -d | wc -c",
        "kubectl create secret generic {secret_file} --from-file=password=./{secret_file}.txt",
        "helm upgrade --install {repo} ./chart --set auth.existingSecret={secret_file}",
        "export {env}={setting}",
        "pytest tests/test_{table}.py -k '{kw}' -q",
        "rg -n '{kw}' {dir}",
        "grep -rn --include=*.py '{kw}' {dir}",
        "zip -r {repo}.zip {dir}",
        "unzip -o {repo}.zip -d /tmp/{repo}",
        "7z x {repo}.7z -o/tmp/{repo}",
        "ldapsearch -x -H ldap://{host} -b dc=acme,dc=org '(uid={user})'",
        "ldapsearch -x -W -D cn=admin,dc=acme,dc=org -b dc=acme,dc=org",
        "sqlcmd -S {host} -E -Q 'SELECT name FROM sys.databases'",
        "smbclient -L //{host} -N",
        "smbclient //{host}/share -U {user} -A ~/.smbcredentials",
        "openssl pkcs12 -export -in {user}.crt -inkey {user}.key -out {user}.p12 -passout env:P12",
        "openssl rsa -in {user}.key -passin file:/run/secrets/{secret_file} -out plain.key",
        "chmod 600 ~/.pgpass ~/.my.cnf ~/.netrc",
        "git config --global credential.helper 'cache --timeout={n}'",
    ),
    "placeholders": (
        "{ENV}=changeme",
        "{ENV}=${{{ENV}}}",
        "{ENV}=${{{ENV}:-}}",
        "{ENV}=<{var}>",
        "{ENV}=your-{var}-here",
        "{ENV}=YOUR_{ENV}",
        "{ENV}=********",
        "{ENV}=xxxxxxxxxxxx",
        "{ENV}=REPLACE_ME",
        "{ENV}=",
        '{{"{var}": "changeme", "host": "{host}"}}',
        '{{"{var}": "<{var}>"}}',
        '{{"{var}": "${{{ENV}}}"}}',
        '{{"{var}": "{{{{ secrets.{ENV} }}}}"}}',
        '{{"{camel}": "YOUR_{ENV}"}}',
        '{{"{var}": "********", "user": "{user}"}}',
        "{var}: ${{{ENV}}}\nuser: {user}\n",
        "{var}: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n",
        '{var}: "{{{{ vault_{var} }}}}"\n',
        "{var}: example\nhost: {host}\n",
        "{var}: {camel}\n",
        "--{var}=${ENV}",
        "--{var} <{var}>",
        "postgres://{user}:${{{ENV}}}@{host}:{port}/{db}",
        "https://{user}:<{var}>@{host}/",
        "mysql -u {user} -p'${{{ENV}}}' {db}",
        "curl -u {user}:${ENV} https://{host}/",
    ),
    "prose": (
        "The {thing} for {user} expired {n} days ago; rotate it before the release.",
        "Where is the {thing} for the {service} service stored?",
        "Rotate the {thing} every {n} days and never commit it.",
        "Use a {n}-character {thing} with letters, digits and symbols.",
        "Why does `git push` ask for my password on {host}?",
        "Monkey-patch the {kw} loader in tests/test_{table}.py.",
        "Press Ctrl+{letter} on the keyboard to open the command palette.",
        "Token usage: {n} input, {n} output",
        "auth: ok ({n} ms)",
        "password reset email sent to {user}@example.com",
        "secret scanning closed {n} alerts in acme/{repo}",
        "Add a --{var}-file option to the {service} command.",
        "The {service} container reads its {thing} from /run/secrets/{secret_file}.",
        "Summarize how {dir}/{file} validates the {thing}.",
        "Error: {status} Unauthorized (the {thing} is missing or invalid)",
        "warning: {thing} for {user} will expire in {n} days",
        "Passport photos for {user} uploaded ({n} files).",
        "Turkey and keyboard emoji render as tofu on {host}.",
    ),
    "code": (
        '{var} = os.environ["{ENV}"]',
        "const {camel} = process.env.{ENV};",
        'if not {var}:\n    raise ValueError("{var} is required")',
        "def verify_{var}(user: User, {var}: str) -> bool:",
        '{var}: str = Field(default="", alias="{ENV}")',
        "return hmac.compare_digest({var}, expected)",
        'let {camel} = std::env::var("{ENV}")?;',
        "SELECT id, {var}_hash FROM users WHERE email = $1",
        "UPDATE users SET password_hash = $1 WHERE id = $2",
        "CREATE TABLE {table} (id uuid primary key, {var}_hash text not null)",
        '{camel} := os.Getenv("{ENV}")',
        "this.{camel} = options.{camel} ?? null;",
        '@Value("${{spring.datasource.password}}") private String {camel};',
        "{var}=getpass.getpass()",
        "{var} = keyring.get_password('{service}', '{user}')",
        'os.getenv("{ENV}", "")',
        'os.environ.get("{ENV}", "{setting}")',
        'config.get("{var}", None)',
        't("{var}", "{thing}")',
        "<password>${{env.{ENV}}}</password>",
        'new PostgreSQLContainer("postgres:16").withPassword("test")',
        "user.setPassword(passwordEncoder.encode(form.getPassword()));",
        'os.environ["{ENV}"] = getpass.getpass()',
        "define('{ENV}', getenv('{ENV}'));",
    ),
    "logs": (
        "2026-11-22T10:{n}:00Z INFO {service}: user={user} action=login status={status}",
        "2026-11-22T10:{n}:00Z WARN token refresh failed for user_id={n}: {status}",
        "2026-11-22T10:{n}:00Z DEBUG cache key={kw}:{n} hit=true",
        'level=info msg="{thing} rotated" service={service} took={n}ms',
        "{status} GET /api/v{n}/{table}?page={n} {n}ms",
    ),
}


def _fill(template: str) -> str:
    return template.format(**{k: _clean_rng.choice(v) for k, v in FILL.items()})


def _generated_clean_values() -> tuple[str, ...]:
    """Each template filled a few times (duplicates dropped), then ids, hashes and base64."""
    values = [
        _fill(template)
        for templates in CLEAN_TEMPLATES.values()
        for template in templates
        for _ in range(5)
    ]
    values += [str(uuid.UUID(int=_clean_rng.getrandbits(128), version=4)) for _ in range(40)]
    values += [hashlib.sha256(f"artifact {i}".encode()).hexdigest() for i in range(30)]
    values += [hashlib.sha1(f"tree {i}".encode()).hexdigest() for i in range(30)]
    values += [f"{_clean_rng.getrandbits(64):016x}" for _ in range(30)]  # span ids
    values += [b64(_fill(t).encode()) for t in CLEAN_TEMPLATES["prose"]]  # base64 of text
    values += [b64(random_bytes(48)) for _ in range(20)]  # image and gzip chunks
    return tuple(dict.fromkeys(values))


GENERATED_CLEAN_VALUES = _generated_clean_values()

# What the corpus figures (README, "Redaction") are computed over.
ALL_SECRET_CASES = SECRET_CASES + ISSUE_18_CASES + PASSWORD_CASES + HARD_CASES
ALL_CLEAN_VALUES = CLEAN_VALUES + GENERATED_CLEAN_VALUES
