"""A small Hugging Face Hub-compatible HTTP server: test and demo support, not part of the product.

The pipeline moves fold datasets and LoRA adapters through the Hub, but the tests and the offline demo have
no internet. This server speaks just enough of the Hub's HTTP API for the real client libraries
(`huggingface_hub`, `datasets.push_to_hub` / `load_dataset`, peft's and transformers' `push_to_hub` /
`from_pretrained`) to push and pull with nothing patched: repo creation, pre-upload, the Git LFS batch API,
NDJSON commits, repo info / tree / paths-info / refs / commits listings and file downloads (`resolve`, with
byte ranges). It is deliberately small: any token is accepted and maps to one local user, there are no pull
requests, tags or Xet storage, and revision names containing "/" are not supported.

It never reads, writes or deletes outside --storage: every name a request brings (repo type, namespace, name,
revision, branch, path in a repo; in the URL or in the body) goes through `check_name`, and every repo folder must
resolve inside the storage. A bad name or body is a 400 with a JSON error, a body over --max_body_mb (LFS objects:
--max_lfs_mb) a 413, checked on the declared length and again while streaming.

Run it, then point the clients at it before any HF library is imported:

    python -m tools.hub_server --storage outputs/hub --port 8999
    export HF_ENDPOINT=http://127.0.0.1:8999 HF_HUB_DISABLE_XET=1 HF_TOKEN=hf_local

(`HF_HUB_DISABLE_XET=1` is required: the client has no fallback from Xet to LFS.)

Storage, on disk under --storage, survives restarts:

    objects/ab/abcdef...                    every file's bytes, named by their sha256 (content-addressed)
    repos/{models,datasets,spaces}/NS/NAME/repo.json    visibility, creation date and branch heads
    repos/.../commits/ID.json               one commit: parents, message, date and its full file table
"""

import base64
import binascii
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

logger = logging.getLogger("hub_server")

USER = "user"  # every token maps to this single local user
KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# Same rule as the Hub's default .gitattributes: these go through LFS, as does anything large or binary.
# datasets deletes its temporary parquet shards right after the pre-upload, so parquet must be LFS.
LFS_SUFFIXES = (".parquet", ".safetensors", ".bin", ".arrow", ".pt", ".pth", ".gguf", ".ckpt", ".onnx", ".h5",
                ".msgpack", ".npy", ".npz", ".pkl", ".pickle", ".zip", ".gz", ".tar", ".zst", ".model")
LFS_MIN_SIZE = 10 * 1024 * 1024
REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Request size bounds (MiB), so that no request can fill the memory or the disk. A commit carries its small
# (non-LFS, < LFS_MIN_SIZE) files inline as base64; LFS objects are streamed to disk: the pipeline's largest is
# a merged model's safetensors shard.
MAX_BODY_MB = 64
MAX_LFS_MB = 512


class HubError(Exception):
    """An error answered the Hub's way: status, `X-Error-Code` (the clients map it to their exceptions), message."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob; the client compares it with its local files to skip unchanged ones."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def write_json_atomic(path: Path, data) -> None:
    """Write to a temporary file then rename: a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def check_name(value, what: str, allow_slash: bool = False) -> str:
    """The one check of every name a request brings (repo kind or type, namespace, repo name, revision, branch,
    path in a repo) before it reaches a folder or a lookup; anything else is a 400.

    Refused: a non-string; empty; absolute; a "", ".", ".." or ".git" part; a backslash or NUL; a "%" (the server
    decodes a URL once, so a "%" left is a second encoding, e.g. "%252F"); and "/" unless `allow_slash`. A single
    name also follows the Hub's repo-name rule (letters, digits, "._-", no "..", not ending in ".git").
    """
    parts = value.split("/") if isinstance(value, str) else [""]
    bad = any(part in ("", ".", "..", ".git") for part in parts) or any(c in value for c in "\\%\0")
    if not bad and not allow_slash:
        bad = not REPO_NAME.match(value) or ".." in value or value.endswith(".git")
    if bad:
        raise HubError(400, f"Invalid {what}: {value!r}")
    return value


def clean_repo_path(path) -> str:
    """A file or folder path inside a repo: never one that could escape it or that git would not store."""
    return check_name(path, "path in repo", allow_slash=True)


class Storage:
    """Repos, commits and content-addressed objects on disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.root / "tmp", ignore_errors=True)  # partial uploads left by a killed server
        (self.root / "tmp").mkdir(parents=True)
        self._commit_cache = {}  # commits are immutable once written

    # objects
    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def has_object(self, sha256: str) -> bool:
        return bool(SHA256_HEX.match(sha256)) and self.object_path(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        if not self.has_object(sha256):
            tmp = self.new_tmp_path()
            tmp.write_bytes(data)
            self.adopt_object(tmp, sha256)
        return sha256

    def new_tmp_path(self) -> Path:
        return self.root / "tmp" / uuid.uuid4().hex

    def adopt_object(self, tmp: Path, sha256: str) -> None:
        path = self.object_path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)

    # repos
    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        """Every repo folder comes from here: checked names, and a path that resolves inside the storage."""
        namespace, _, name = repo_id.partition("/")
        path = self.root / "repos" / f"{check_name(repo_type, 'repo type')}s" / check_name(namespace, "namespace")
        path = path / check_name(name, "repo name")
        # Defence in depth: the names are checked above, yet a symlink planted in the storage must not lead out.
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise HubError(400, f"Invalid repo {repo_id!r}: outside the storage")
        return path

    def load_repo(self, repo_type: str, repo_id: str) -> dict:
        path = self.repo_dir(repo_type, repo_id) / "repo.json"
        if not path.is_file():
            raise HubError(404, f"Repository {repo_type}s/{repo_id} not found", "RepoNotFound")
        return json.loads(path.read_text())

    def save_repo(self, repo: dict) -> None:
        write_json_atomic(self.repo_dir(repo["type"], repo["id"]) / "repo.json", repo)

    def load_commit(self, repo: dict, commit_id: str) -> dict:
        key = (repo["type"], repo["id"], commit_id)
        if key not in self._commit_cache:
            path = self.repo_dir(repo["type"], repo["id"]) / "commits" / f"{commit_id}.json"
            self._commit_cache[key] = json.loads(path.read_text())
        return self._commit_cache[key]

    def resolve(self, repo: dict, revision: str) -> dict:
        """A branch name or a full commit id -> the commit."""
        commit_id = repo["branches"].get(check_name(revision, "revision", allow_slash=True), revision)
        if re.fullmatch(r"[0-9a-f]{40}", commit_id) and (
            self.repo_dir(repo["type"], repo["id"]) / "commits" / f"{commit_id}.json"
        ).is_file():
            return self.load_commit(repo, commit_id)
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def write_commit(self, repo: dict, branch: str, parents: list, files: dict, title: str, message: str) -> dict:
        """Write a new commit, then move the branch to it: the rename of repo.json is the atomic step."""
        date = now_iso()
        tree_hash = hashlib.sha1(json.dumps(sorted((p, e["oid"]) for p, e in files.items())).encode()).hexdigest()
        commit_id = hashlib.sha1(json.dumps([parents, tree_hash, title, message, date]).encode()).hexdigest()
        for entry in files.values():
            entry.setdefault("lastCommit", commit_id)  # entries carried over from the parent keep theirs
        commit = {"id": commit_id, "parents": parents, "title": title, "message": message, "date": date,
                  "files": files}
        write_json_atomic(self.repo_dir(repo["type"], repo["id"]) / "commits" / f"{commit_id}.json", commit)
        repo["branches"][branch] = commit_id
        repo["lastModified"] = date
        self.save_repo(repo)
        return commit


@dataclass
class ServerArguments:
    storage: str = field(
        metadata={"help": "Directory holding the repos and objects; created if missing, reused across restarts."}
    )
    host: str = field(default="127.0.0.1", metadata={"help": "Interface to listen on."})
    port: int = field(default=8999, metadata={"help": "TCP port to listen on."})
    log_level: str = field(default="info", metadata={"help": "uvicorn log level; 'info' logs every request."})
    max_body_mb: float = field(
        default=MAX_BODY_MB,
        metadata={"help": "Largest request body other than an LFS upload (JSON, NDJSON commits), in MiB; more: 413."},
    )
    max_lfs_mb: float = field(
        default=MAX_LFS_MB, metadata={"help": "Largest LFS object accepted, in MiB; a larger upload gets 413."}
    )


# ----------------------------------------------------------------------------------------------------------
# Helpers shared by the routes
# ----------------------------------------------------------------------------------------------------------
def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def repo_of(request: Request) -> tuple[str, str]:
    """(repo_type, repo_id) from the route: /api/{kind}/... or the optional datasets/ spaces/ URL prefix."""
    kind = request.path_params.get("kind", "models")
    if kind not in KINDS:
        raise HubError(404, f"Unknown repo kind {kind!r}", "RepoNotFound")
    return KINDS[kind], f"{request.path_params['ns']}/{request.path_params['name']}"


def repo_of_body(body: dict) -> tuple[str, str]:
    """(repo_type, repo_id) from a repos/create or repos/delete body: an absent type or organization (null) is
    the default, an empty or bad one a 400."""
    repo_type = body.get("type")
    repo_type = "model" if repo_type is None else check_name(repo_type, "repo type")
    if repo_type not in URL_PREFIX:
        raise HubError(400, f"Invalid repo type {repo_type!r}")
    namespace = body.get("organization")
    namespace = USER if namespace is None else namespace
    return repo_type, f"{check_name(namespace, 'namespace')}/{check_name(body.get('name'), 'repo name')}"


# Route parameters, checked for every route at once: (what a message calls it, whether it may hold a "/").
PATH_PARAMS = {"kind": ("repo kind", False), "ns": ("namespace", False), "name": ("repo name", False),
               "branch": ("branch", False), "oid": ("LFS oid", False), "rev": ("revision", True),
               "path": ("path in repo", True)}


def checked(endpoint):
    """The endpoint, after check_name on each of its route parameters (400 before any lookup)."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request):
        for key, value in request.path_params.items():
            # A folder path may end in "/" (tree listings); nothing else may.
            check_name(value.rstrip("/") if key == "path" else value, *PATH_PARAMS[key])
        return await endpoint(request)

    return wrapper


def check_declared_length(request: Request, limit: int) -> None:
    """413 before reading a body whose Content-Length is over `limit` bytes (the readers bound the rest)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HubError(413 if declared.isdigit() else 400, f"Request body of {declared} bytes; the limit is {limit}")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes (declared or streamed)."""
    check_declared_length(request, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HubError(413, f"Request body over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> dict:
    """A JSON object body (empty: {}); anything else is a 400, an oversized one a 413."""
    body = await read_body(request, request.app.state.max_body)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as e:  # UnicodeDecodeError is a ValueError too
        raise HubError(400, f"The request body is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise HubError(400, f"The request body must be a JSON object, not {type(data).__name__}")
    return data


def typed(value, kind: type, what: str):
    """A field of a request body, if of the expected type; else a 400 (never a TypeError, which would be a 500)."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise HubError(400, f"{what} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def repo_url(request: Request, repo_type: str, repo_id: str) -> str:
    return f"{base_url(request)}/{URL_PREFIX[repo_type]}{repo_id}"


def file_json(storage: Storage, repo: dict, path: str, entry: dict, expand: bool) -> dict:
    out = {"type": "file", "oid": entry["oid"], "size": entry["size"], "path": path}
    if entry["lfs"]:
        out["lfs"] = {"oid": entry["sha256"], "size": entry["size"],
                      "pointerSize": len(lfs_pointer(entry["sha256"], entry["size"]))}
    if expand:
        out["lastCommit"] = last_commit_json(storage, repo, [entry["lastCommit"]])
    return out


def folder_json(storage: Storage, repo: dict, path: str, files: dict, expand: bool) -> dict:
    inside = {p: e for p, e in files.items() if p.startswith(path + "/")}
    oid = hashlib.sha1(json.dumps(sorted((p, e["oid"]) for p, e in inside.items())).encode()).hexdigest()
    out = {"type": "directory", "oid": oid, "size": 0, "path": path}
    if expand:
        out["lastCommit"] = last_commit_json(storage, repo, [e["lastCommit"] for e in inside.values()])
    return out


def last_commit_json(storage: Storage, repo: dict, commit_ids: list) -> dict:
    latest = max((storage.load_commit(repo, c) for c in set(commit_ids)), key=lambda c: c["date"])
    return {"id": latest["id"], "title": latest["title"], "date": latest["date"]}


def folders_of(files: dict) -> set:
    return {str(parent) for path in files for parent in PurePosixPath(path).parents if str(parent) != "."}


def is_lfs(path: str, size: int, sample: bytes) -> bool:
    return path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE or b"\0" in sample


# ----------------------------------------------------------------------------------------------------------
# Routes
# ----------------------------------------------------------------------------------------------------------
async def whoami(request: Request):
    return JSONResponse({
        "type": "user", "id": USER, "name": USER, "fullname": "Local user", "email": None, "emailVerified": False,
        "isPro": False, "orgs": [], "canPay": False,
        "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}},
    })


async def agent_harnesses(request: Request):
    # huggingface_hub fetches this registry (best effort) to tag its user agent; an empty one disables that.
    return JSONResponse({"standardEnvVars": [], "harnesses": {}})


async def create_repo(request: Request):
    storage = storage_of(request)
    body = await read_json(request)
    repo_type, repo_id = repo_of_body(body)
    url = repo_url(request, repo_type, repo_id)
    if (storage.repo_dir(repo_type, repo_id) / "repo.json").exists():
        return JSONResponse({"error": f"You already created this {repo_type} repo", "url": url}, status_code=409)
    private = body.get("private", body.get("visibility") == "private") or False
    repo = {"type": repo_type, "id": repo_id, "private": bool(private), "createdAt": now_iso(), "branches": {}}
    # Like the Hub, a new repo starts with one commit holding .gitattributes.
    attributes = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
    sha256 = storage.put_bytes(attributes)
    files = {".gitattributes": {"sha256": sha256, "size": len(attributes), "lfs": False,
                                "oid": git_blob_oid(attributes)}}
    storage.write_commit(repo, "main", [], files, "initial commit", "")
    logger.info("created %s repo %s", repo_type, repo_id)
    return JSONResponse({"url": url, "name": repo_id, "id": repo_id})


async def delete_repo(request: Request):
    storage = storage_of(request)
    repo_type, repo_id = repo_of_body(await read_json(request))
    storage.load_repo(repo_type, repo_id)  # 404 if missing
    shutil.rmtree(storage.repo_dir(repo_type, repo_id))  # objects stay: they may be shared with other repos
    return JSONResponse({})


def repo_info_json(storage: Storage, repo: dict, commit: dict) -> dict:
    siblings = []
    for path, entry in sorted(commit["files"].items()):
        sibling = {"rfilename": path, "size": entry["size"], "blobId": entry["oid"]}
        if entry["lfs"]:
            sibling["lfs"] = file_json(storage, repo, path, entry, False)["lfs"] | {"sha256": entry["sha256"]}
        siblings.append(sibling)
    return {
        "_id": repo["id"], "id": repo["id"], "author": repo["id"].split("/")[0], "sha": commit["id"],
        "private": repo["private"], "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
        "createdAt": repo["createdAt"], "lastModified": commit["date"], "siblings": siblings,
    }


async def repo_info(request: Request):
    storage = storage_of(request)
    repo = storage.load_repo(*repo_of(request))
    commit = storage.resolve(repo, request.path_params.get("rev", "main"))
    return JSONResponse(repo_info_json(storage, repo, commit))


async def list_repos(request: Request):
    """list_models / list_datasets: every repo of the kind, filtered by `author` and `search` only."""
    storage = storage_of(request)
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise HubError(404, f"Unknown repo kind {kind!r}")
    author, search = request.query_params.get("author"), request.query_params.get("search", "")
    out = []
    for path in sorted((storage.root / "repos" / kind).glob("*/*/repo.json")):
        repo = json.loads(path.read_text())
        if (author is None or repo["id"].split("/")[0] == author) and search.lower() in repo["id"].lower():
            out.append(repo_info_json(storage, repo, storage.resolve(repo, "main")))
    return JSONResponse(out)


async def list_tree(request: Request):
    storage = storage_of(request)
    repo_type, repo_id = repo_of(request)
    repo = storage.load_repo(repo_type, repo_id)
    commit = storage.resolve(repo, request.path_params["rev"])
    files = commit["files"]
    root = request.path_params.get("path", "").strip("/")
    recursive = request.query_params.get("recursive", "").lower() in ("1", "true")
    expand = request.query_params.get("expand", "").lower() in ("1", "true")
    if root in files:
        raise HubError(400, f"{root} is a file, not a directory")
    folders = folders_of(files)
    if root and root not in folders:
        raise HubError(404, f"Directory {root} not found at {commit['id']}", "EntryNotFound",
                       {"X-Repo-Commit": commit["id"]})
    prefix = root + "/" if root else ""

    def listed(path: str) -> bool:
        return path.startswith(prefix) and (recursive or "/" not in path[len(prefix):])

    entries = [folder_json(storage, repo, p, files, expand) for p in sorted(folders) if listed(p)]
    entries += [file_json(storage, repo, p, e, expand) for p, e in sorted(files.items()) if listed(p)]
    return JSONResponse(entries)


async def paths_info(request: Request):
    storage = storage_of(request)
    repo_type, repo_id = repo_of(request)
    repo = storage.load_repo(repo_type, repo_id)
    commit = storage.resolve(repo, request.path_params["rev"])
    # The client sends a form (paths=a&paths=b&expand=False); parsed here to avoid needing python-multipart.
    try:
        form = parse_qs((await read_body(request, request.app.state.max_body)).decode(), keep_blank_values=True)
    except UnicodeDecodeError as e:
        raise HubError(400, f"The request body is not a UTF-8 form: {e}") from e
    expand = form.get("expand", ["false"])[0].lower() in ("1", "true")
    files, folders = commit["files"], folders_of(commit["files"])
    out = []
    for path in form.get("paths", []):
        path = clean_repo_path(path.rstrip("/"))
        if path in files:
            out.append(file_json(storage, repo, path, files[path], expand))
        elif path in folders:
            out.append(folder_json(storage, repo, path, files, expand))
    return JSONResponse(out)


async def list_refs(request: Request):
    storage = storage_of(request)
    repo = storage.load_repo(*repo_of(request))
    branches = [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": commit_id}
                for name, commit_id in sorted(repo["branches"].items())]
    out = {"branches": branches, "converts": [], "tags": []}
    if request.query_params.get("include_prs"):
        out["pullRequests"] = []
    return JSONResponse(out)


async def list_commits(request: Request):
    storage = storage_of(request)
    repo = storage.load_repo(*repo_of(request))
    commit = storage.resolve(repo, request.path_params["rev"])
    history = []
    while True:
        history.append({"id": commit["id"], "title": commit["title"], "message": commit["message"],
                        "date": commit["date"], "authors": [{"user": USER}]})
        if not commit["parents"]:
            return JSONResponse(history)
        commit = storage.load_commit(repo, commit["parents"][0])


async def create_branch(request: Request):
    body = await read_json(request)
    # Read the body before the repo: after the last await, nothing can change repo.json under this request.
    storage = storage_of(request)
    repo = storage.load_repo(*repo_of(request))
    branch = request.path_params["branch"]
    if branch in repo["branches"]:
        raise HubError(409, f"Reference refs/heads/{branch} already exists")
    start = storage.resolve(repo, body.get("startingPoint", "main"))
    repo["branches"][branch] = start["id"]
    storage.save_repo(repo)
    return JSONResponse({})


async def delete_branch(request: Request):
    storage = storage_of(request)
    repo = storage.load_repo(*repo_of(request))
    branch = request.path_params["branch"]
    if branch == "main":
        raise HubError(403, "Cannot delete the default branch")
    if branch not in repo["branches"]:
        raise HubError(404, f"Branch {branch} not found", "RevisionNotFound")
    del repo["branches"][branch]
    storage.save_repo(repo)
    return JSONResponse({})


async def preupload(request: Request):
    storage = storage_of(request)
    repo = storage.load_repo(*repo_of(request))
    commit = storage.resolve(repo, request.path_params["rev"])
    body = await read_json(request)
    answers = []
    for item in typed(body.get("files", []), list, "files"):
        path = clean_repo_path(typed(item, dict, "a files entry").get("path"))
        try:
            sample = base64.b64decode(typed(item.get("sample", ""), str, f"{path}: sample"), validate=True)
        except binascii.Error as e:
            raise HubError(400, f"{path}: sample is not base64: {e}") from e
        size = typed(item.get("size", 0), int, f"{path}: size")
        existing = commit["files"].get(path)
        # The client skips a file whose remote oid equals its local one: sha256 for LFS files, git oid otherwise.
        oid = None if existing is None else (existing["sha256"] if existing["lfs"] else existing["oid"])
        answers.append({"path": path, "uploadMode": "lfs" if is_lfs(path, size, sample) else "regular",
                        "shouldIgnore": False, "oid": oid})
    return JSONResponse({"files": answers, "commitOid": commit["id"]})


async def lfs_batch(request: Request):
    storage = storage_of(request)
    repo_type, repo_id = repo_of(request)
    storage.load_repo(repo_type, repo_id)
    body = await read_json(request)
    if body.get("operation") != "upload":
        raise HubError(400, "This local hub only implements LFS uploads; download files with /resolve")
    objects, limit = [], request.app.state.max_lfs
    for obj in typed(body.get("objects", []), list, "objects"):
        oid, size = typed(obj, dict, "an objects entry").get("oid", ""), obj.get("size")
        if not isinstance(oid, str) or not SHA256_HEX.match(oid) or not isinstance(size, int):
            objects.append({"oid": str(oid), "size": size if isinstance(size, int) else 0,
                            "error": {"code": 422, "message": "oid must be a sha256 hex digest and size an int"}})
        elif size > limit:
            objects.append({"oid": oid, "size": size,
                            "error": {"code": 413, "message": f"{size} bytes: this hub's limit is {limit}"}})
        elif storage.has_object(oid):
            objects.append({"oid": oid, "size": size})  # no actions: the client skips the upload
        else:
            href = f"{repo_url(request, repo_type, repo_id)}.git/info/lfs/objects/{oid}"
            objects.append({"oid": oid, "size": size, "authenticated": True,
                            "actions": {"upload": {"href": href, "header": {}}}})
    return JSONResponse({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                        media_type="application/vnd.git-lfs+json")


async def lfs_put(request: Request):
    """Receive one LFS object; keep it only if its bytes hash to the announced sha256."""
    storage = storage_of(request)
    storage.load_repo(*repo_of(request))
    oid = request.path_params["oid"]
    if not SHA256_HEX.match(oid):
        raise HubError(400, f"Invalid LFS oid {oid!r}")
    limit = request.app.state.max_lfs
    check_declared_length(request, limit)
    tmp, digest, size = storage.new_tmp_path(), hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:  # a chunked upload declares no length: stop at the bound, not at the end
                    raise HubError(413, f"LFS object over the limit of {limit} bytes")
                digest.update(chunk)
                f.write(chunk)
        if digest.hexdigest() != oid:
            raise HubError(400, f"LFS object rejected: sha256 of the {size} bytes received is "
                                f"{digest.hexdigest()}, not {oid}")
        storage.adopt_object(tmp, oid)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("stored LFS object %s (%d bytes)", oid, size)
    return Response(status_code=200)


def apply_operations(storage: Storage, repo: dict, parent: dict, lines: list) -> tuple[dict, dict]:
    """The commit's file table after its operations: (files kept from the parent, files added or changed)."""
    files = {path: dict(entry) for path, entry in parent["files"].items()}  # the parent is cached: copy
    changed = {}
    for line in lines:
        key, value = line.get("key"), line.get("value", {})
        path = clean_repo_path(value.get("path", ""))
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, f"{path}: only base64 file content is supported")
            data = base64.b64decode(value["content"])
            changed[path] = {"sha256": storage.put_bytes(data), "size": len(data), "lfs": False,
                             "oid": git_blob_oid(data)}
        elif key == "lfsFile":
            oid = value.get("oid", "")
            if not storage.has_object(oid):
                raise HubError(400, f"{path}: LFS object {oid} was never uploaded (or was refused)")
            size = storage.object_path(oid).stat().st_size
            if value.get("size") not in (None, size):
                raise HubError(400, f"{path}: LFS object {oid} has {size} bytes, not {value['size']}")
            changed[path] = {"sha256": oid, "size": size, "lfs": True, "oid": git_blob_oid(lfs_pointer(oid, size))}
        elif key == "copyFile":
            # Not sent by huggingface_hub 2.4 (it turns copies into file/lfsFile lines); accepted as
            # {"path", "srcPath", "srcRevision"?} for other clients.
            source = storage.resolve(repo, value.get("srcRevision", parent["id"]))
            src_path = clean_repo_path(value.get("srcPath", ""))
            if src_path not in source["files"]:
                raise HubError(404, f"Cannot copy {src_path}: no such file", "EntryNotFound")
            changed[path] = {k: v for k, v in source["files"][src_path].items() if k != "lastCommit"}
        elif key == "deletedFile":
            if path not in files and path not in changed:
                raise HubError(404, f"{path}: A file with this name doesn't exist", "EntryNotFound")
            files.pop(path, None)
            changed.pop(path, None)
        elif key == "deletedFolder":
            doomed = [p for p in list(files) + list(changed) if p.startswith(path + "/")]
            if not doomed:
                raise HubError(404, f"{path}: A folder with this name doesn't exist", "EntryNotFound")
            for p in doomed:
                files.pop(p, None)
                changed.pop(p, None)
        else:
            raise HubError(400, f"Unknown commit operation {key!r}")
    return files, changed


async def commit(request: Request):
    """Apply an NDJSON commit. Everything is checked before anything is written, so it lands whole or not at all."""
    body = await read_body(request, request.app.state.max_body)
    # No await below this point: the event loop runs one request at a time, so the branch cannot move under us.
    storage = storage_of(request)
    repo_type, repo_id = repo_of(request)
    repo = storage.load_repo(repo_type, repo_id)
    branch = request.path_params["rev"]
    if request.query_params.get("create_pr"):
        raise HubError(400, "Pull requests are not supported by this local hub")
    if branch not in repo["branches"]:
        raise HubError(404, f"Branch {branch} not found (commits go to an existing branch)", "RevisionNotFound")
    parent = storage.resolve(repo, branch)
    try:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header" or not isinstance(lines[0].get("value"), dict):
            raise HubError(400, "The commit body must be NDJSON starting with a 'header' line")
        header = lines[0]["value"]
        files, changed = apply_operations(storage, repo, parent, lines[1:])
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # binascii.Error is a ValueError
        raise HubError(400, f"Malformed commit body: {type(e).__name__}: {e}") from e
    if header.get("parentCommit") and header["parentCommit"] != parent["id"]:
        raise HubError(412, f"A commit has happened since {header['parentCommit']}: {branch} is now at {parent['id']}")
    for path, entry in changed.items():
        if files.get(path, {}).get("oid") != entry["oid"]:
            files[path] = entry  # no lastCommit yet: write_commit stamps the new commit id
    title = header.get("summary") or "Commit"
    new = storage.write_commit(repo, branch, [parent["id"]], files, title, header.get("description") or "")
    logger.info("commit %s on %s %s@%s: %d file(s)", new["id"][:10], repo_type, repo_id, branch, len(files))
    return JSONResponse({"success": True, "commitOid": new["id"],
                         "commitUrl": f"{repo_url(request, repo_type, repo_id)}/commit/{new['id']}",
                         "commitMessage": title, "hookOutput": "", "pullRequestUrl": None})


async def resolve_file(request: Request):
    """GET/HEAD of a file at a revision, with the headers the download code relies on; byte ranges work."""
    storage = storage_of(request)
    repo = storage.load_repo(*repo_of(request))
    commit = storage.resolve(repo, request.path_params["rev"])
    path = request.path_params["path"]
    entry = commit["files"].get(path)
    if entry is None:
        raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit["id"]})
    headers = {"X-Repo-Commit": commit["id"], "ETag": f'"{entry["oid"]}"'}
    if entry["lfs"]:
        headers |= {"X-Linked-Etag": f'"{entry["sha256"]}"', "X-Linked-Size": str(entry["size"])}
    media_type = "text/plain; charset=utf-8" if not entry["lfs"] else "application/octet-stream"
    return FileResponse(storage.object_path(entry["sha256"]), headers=headers, media_type=media_type)


async def validate_yaml(request: Request):
    return JSONResponse({"errors": [], "warnings": []})


async def hub_error(request: Request, exc: HubError):
    headers = dict(exc.headers)
    if exc.code:
        headers["X-Error-Code"] = exc.code
    headers["X-Error-Message"] = exc.message.encode("ascii", "replace").decode()
    # Clients probe optional files all the time: a 404 is routine, anything else is worth a warning.
    level = logging.INFO if exc.status == 404 else logging.WARNING
    logger.log(level, "%s %s -> %d %s", request.method, request.url.path, exc.status, exc.message)
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


async def not_found(request: Request, exc: Exception):
    # An encoded "/" or "." in a name ("..%2F..%2Fx", "%2e%2e") is decoded before routing, so such a URL often
    # matches no route: say it is a bad name (400), as check_name does for the URLs that do match one.
    path = request.url.path
    raw = request.scope.get("raw_path", b"").lower()
    bad_part = any(part in ("", ".", "..", ".git") for part in path.split("/")[1:])
    if bad_part or any(encoded in raw for encoded in (b"%2f", b"%2e", b"%5c")):
        return await hub_error(request, HubError(400, f"Invalid name in {path!r}"))
    logger.warning("no route for %s %s", request.method, path)
    return JSONResponse({"error": f"Not found: {request.method} {path}"}, status_code=404)


def build_app(storage_dir: str, max_body_mb: float = MAX_BODY_MB, max_lfs_mb: float = MAX_LFS_MB) -> Starlette:
    repo = "/api/{kind}/{ns}/{name}"
    routes = [
        Route("/api/whoami-v2", whoami),
        Route("/api/agent-harnesses", agent_harnesses),
        Route("/api/validate-yaml", validate_yaml, methods=["POST"]),
        Route("/api/repos/create", create_repo, methods=["POST"]),
        Route("/api/repos/delete", delete_repo, methods=["DELETE"]),
        Route("/api/{kind}", list_repos),
        Route(repo, repo_info),
        Route(repo + "/revision/{rev:path}", repo_info),
        Route(repo + "/tree/{rev}", list_tree),
        Route(repo + "/tree/{rev}/{path:path}", list_tree),
        Route(repo + "/paths-info/{rev}", paths_info, methods=["POST"]),
        Route(repo + "/refs", list_refs),
        Route(repo + "/commits/{rev}", list_commits),
        Route(repo + "/branch/{branch}", create_branch, methods=["POST"]),
        Route(repo + "/branch/{branch}", delete_branch, methods=["DELETE"]),
        Route(repo + "/preupload/{rev}", preupload, methods=["POST"]),
        Route(repo + "/commit/{rev}", commit, methods=["POST"]),
    ]
    # Git LFS and downloads live outside /api; models have no URL prefix, datasets and spaces do.
    for prefix in ("/{kind}/{ns}/{name}", "/{ns}/{name}"):
        routes += [
            Route(prefix + ".git/info/lfs/objects/batch", lfs_batch, methods=["POST"]),
            Route(prefix + ".git/info/lfs/objects/{oid}", lfs_put, methods=["PUT"]),
            Route(prefix + "/resolve/{rev}/{path:path}", resolve_file, methods=["GET", "HEAD"]),
        ]
    routes = [Route(r.path, checked(r.endpoint), methods=r.methods) for r in routes]  # every route's names checked
    app = Starlette(routes=routes, exception_handlers={HubError: hub_error, 404: not_found})
    app.router.redirect_slashes = False  # "/api/models//" is a bad name (400), not a redirect elsewhere
    app.state.storage = Storage(Path(storage_dir))
    app.state.max_body, app.state.max_lfs = int(max_body_mb * 2**20), int(max_lfs_mb * 2**20)
    return app


# --------------------------------------------------------------------------------------------------------------
# The server as a child process (used by the tests' fixture and by scripts/demo.py)
# --------------------------------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_answers(url: str) -> bool:
    # A proxy set for the outside world must not capture calls to 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/api/whoami-v2", timeout=2):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class LocalHub:
    """`python -m tools.hub_server` as a child process on 127.0.0.1, its output appended to `log_path`.

    With `port=None` a free port is picked at each start, and another one is tried if the server exits at once
    (the port may be taken between the check and the bind). With a fixed port (the tests reserve one before
    HF_ENDPOINT is read) a failed start raises with the end of the server's log.
    """

    def __init__(self, storage, log_path, port: int | None = None, server_args: tuple = ()):
        self.storage, self.log_path, self.port = str(storage), str(log_path), port
        self.server_args = list(server_args)  # more `python -m tools.hub_server` flags, e.g. ("--max_body_mb", "1")
        self.process, self.url = None, None

    def start(self, timeout: float = 60.0) -> str:
        os.makedirs(self.storage, exist_ok=True)
        for attempt in range(1 if self.port else 3):
            port = self.port or free_port()
            self.url = f"http://127.0.0.1:{port}"
            with open(self.log_path, "a") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "tools.hub_server", "--storage", self.storage, "--host", "127.0.0.1",
                     "--port", str(port), *self.server_args],
                    cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if hub_answers(self.url):
                    return self.url
                time.sleep(0.2)
            code = self.process.poll()
            self.stop()
            if code is None:
                raise RuntimeError(
                    f"the local Hub server did not answer on {self.url} within {timeout:.0f}s:\n{self.log_tail()}"
                )
            logger.warning("Hub server exited with code %s (attempt %d); see %s", code, attempt + 1, self.log_path)
        raise RuntimeError(f"the local Hub server did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            logger.info("Stopped the local Hub server (%s)", self.url)
        self.process = None

    def restart(self, timeout: float = 60.0) -> str:
        self.stop()
        return self.start(timeout)

    def log_tail(self, num_lines: int = 40) -> str:
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-num_lines:])


def main():
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(ServerArguments).parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    app = build_app(args.storage, args.max_body_mb, args.max_lfs_mb)
    url = f"http://{args.host}:{args.port}"
    logger.info("Local Hub server on %s (storage: %s)", url, os.path.abspath(args.storage))
    print(f"HF_ENDPOINT={url}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
