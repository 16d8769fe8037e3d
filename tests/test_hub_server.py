"""Every push and pull of the pipeline, through the real client libraries, against tools/hub_server.py.

Nothing is patched: `HF_ENDPOINT` (set in conftest.py) points huggingface_hub, datasets, peft and transformers
at the local server started by the `hub_server` fixture. Repo names carry a random suffix so that these tests
and the other test modules sharing the session's server never collide.
"""

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def unique(name: str) -> str:
    return f"user/{name}-{uuid.uuid4().hex[:8]}"


def tiny_llama(seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config)


def folded_dataset(num_rows: int, seed: int):
    """A DatasetDict shaped like make_folds.py output: train with folds, test with fold -1."""
    import datasets

    rng = __import__("random").Random(seed)
    train = {
        "id": [f"tr{seed}-{i}" for i in range(num_rows)],
        "query": [rng.choice(["red shoe", "phone case", "lamp", "robe d'été"]) for _ in range(num_rows)],
        "label": [rng.randint(0, 1) for _ in range(num_rows)],
        "fold": [i % 3 for i in range(num_rows)],
        "exclude_from_train_folds": [[(i + 1) % 3] if i % 4 == 0 else [] for i in range(num_rows)],
    }
    test = {"id": ["te0", "te1"], "query": ["cup", "bag"], "label": [-1, -1], "fold": [-1, -1],
            "exclude_from_train_folds": [[], []]}
    features = datasets.Features({
        "id": datasets.Value("string"), "query": datasets.Value("string"), "label": datasets.Value("int64"),
        "fold": datasets.Value("int64"), "exclude_from_train_folds": datasets.List(datasets.Value("int64")),
    })
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict(train, features=features),
                                 "test": datasets.Dataset.from_dict(test, features=features)})


def assert_same_dataset_dict(actual, expected):
    assert sorted(actual) == sorted(expected)
    for split in expected:
        assert actual[split].features == expected[split].features, split
        assert actual[split].to_dict() == expected[split].to_dict(), split


def test_dataset_dict_push_then_load_and_replace(hub_server):
    import datasets
    from huggingface_hub import HfApi

    api, repo_id = HfApi(), unique("folds")
    first = folded_dataset(num_rows=30, seed=0)
    first.push_to_hub(repo_id, private=True)
    first_sha = api.dataset_info(repo_id).sha
    assert api.dataset_info(repo_id).private is True
    assert_same_dataset_dict(datasets.load_dataset(repo_id), first)

    # A second push is a new revision that replaces the data; the old revision stays readable.
    second = folded_dataset(num_rows=12, seed=1)
    second.push_to_hub(repo_id)
    assert api.dataset_info(repo_id).sha != first_sha
    assert_same_dataset_dict(datasets.load_dataset(repo_id), second)
    assert_same_dataset_dict(datasets.load_dataset(repo_id, revision=first_sha), first)
    data_files = [f for f in api.list_repo_files(repo_id, repo_type="dataset") if f.startswith("data/")]
    assert sorted(data_files) == ["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    parquet = [f for f in api.list_repo_tree(repo_id, "data", repo_type="dataset")]
    assert all(f.lfs is not None for f in parquet), "parquet shards must go through LFS"


def test_upload_folder_then_snapshot_download(hub_server, tmp_path):
    import torch
    from huggingface_hub import HfApi, HfFileSystem, snapshot_download
    from safetensors.torch import save_file

    folder = tmp_path / "model"
    folder.mkdir()
    torch.manual_seed(0)
    save_file({"weight": torch.randn(512, 1024)}, folder / "model.safetensors")  # 2 MiB of float32
    (folder / "config.json").write_text(json.dumps({"hidden_size": 64}))
    (folder / "nested").mkdir()
    (folder / "nested" / "notes.txt").write_text("line one\nline two\n")
    local = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert len(local["model.safetensors"]) > 2 * 1024 * 1024

    api, repo_id = HfApi(), unique("folder")
    api.create_repo(repo_id)
    commit = api.upload_folder(folder_path=folder, repo_id=repo_id)
    assert api.model_info(repo_id).sha == commit.oid

    tree = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True) if hasattr(f, "size")}
    weights = tree["model.safetensors"]
    assert weights.lfs is not None and weights.lfs.sha256 == hashlib.sha256(local["model.safetensors"]).hexdigest()
    assert tree["config.json"].lfs is None

    snapshot = Path(snapshot_download(repo_id, local_dir=tmp_path / "download"))
    for path, data in local.items():
        assert (snapshot / path).read_bytes() == data, path

    # HfFileSystem reads with HTTP range requests (what datasets does for parquet).
    with HfFileSystem().open(f"{repo_id}/model.safetensors", "rb", block_size=4096) as f:
        f.seek(1_000_000)
        assert f.read(5000) == local["model.safetensors"][1_000_000:1_005_000]

    # Re-uploading unchanged files makes no new commit (the client compares the oids from preupload).
    assert api.upload_folder(folder_path=folder, repo_id=repo_id).oid == commit.oid


def test_peft_lora_adapter_push_then_from_pretrained(hub_server):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    repo_id = unique("lora")
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(tiny_llama(seed=0), lora)
    pushed = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in pushed.items())  # a default init would be zeros
    model.push_to_hub(repo_id, private=True)

    loaded = PeftModel.from_pretrained(tiny_llama(seed=0), repo_id, is_trainable=True)
    state = loaded.state_dict()
    assert sorted(state) == sorted(pushed)
    for key, tensor in pushed.items():
        assert torch.equal(state[key], tensor), key
    assert all(p.requires_grad for n, p in loaded.named_parameters() if "lora_" in n)


def test_trainer_push_to_hub_then_load(hub_server, tmp_path):
    import torch
    from huggingface_hub import HfApi
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    class RandomTokens(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            ids = torch.randint(0, 64, (8,), generator=torch.Generator().manual_seed(i))
            return {"input_ids": ids, "labels": ids}

    repo_id = unique("trained")
    model = tiny_llama(seed=0)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=4, learning_rate=1e-2,
        save_strategy="steps", save_steps=2, push_to_hub=True, hub_model_id=repo_id, hub_private_repo=True,
        report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=RandomTokens())
    trainer.train()  # the checkpoint at step 2 is pushed in the background (hub_strategy="every_save")
    trainer.push_to_hub(commit_message="End of training")

    api = HfApi()
    assert api.list_repo_commits(repo_id)[0].title == "End of training"
    assert "README.md" in api.list_repo_files(repo_id)
    reloaded = AutoModelForCausalLM.from_pretrained(repo_id)
    trained = trainer.model.state_dict()
    assert any(not torch.equal(trained[k], initial[k]) for k in initial), "training changed nothing"
    for key, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, trained[key]), key


def test_corrupted_lfs_upload_is_refused_and_repo_unchanged(hub_server, tmp_path):
    import os

    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.utils import get_session

    api, repo_id = HfApi(), unique("corrupt")
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b'{"ok": true}', path_in_repo="config.json", repo_id=repo_id)
    before = api.model_info(repo_id)

    # The client hashes the file, then the bytes it sends differ (a disk or network corruption).
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(os.urandom(100_000))
    operation = CommitOperationAdd(path_in_repo="weights.safetensors", path_or_fileobj=str(weights))
    announced = operation.upload_info.sha256.hex()
    weights.write_bytes(os.urandom(100_000))
    with pytest.raises(Exception) as raised:
        api.create_commit(repo_id, [operation], commit_message="should not land")
    assert "LFS object rejected" in repr(raised.value.__cause__ or raised.value)

    # At the protocol level: a PUT whose bytes do not hash to the oid is refused, and a commit that names an
    # object never stored is refused as a whole (its other, valid file does not land either).
    session = get_session()
    put = session.put(f"{hub_server}/{repo_id}.git/info/lfs/objects/{announced}", content=b"not those bytes")
    assert put.status_code == 400
    ndjson = "\n".join(json.dumps(line) for line in [
        {"key": "header", "value": {"summary": "half a commit"}},
        {"key": "file", "value": {"path": "ok.txt", "content": "aGk=", "encoding": "base64"}},
        {"key": "lfsFile", "value": {"path": "weights.safetensors", "algo": "sha256", "oid": announced,
                                     "size": 100_000}},
    ])
    response = session.post(f"{hub_server}/api/models/{repo_id}/commit/main", content=ndjson,
                            headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 400

    after = api.model_info(repo_id)
    assert after.sha == before.sha
    assert [s.rfilename for s in after.siblings] == [s.rfilename for s in before.siblings]
    assert len(api.list_repo_commits(repo_id)) == 2  # "initial commit" + config.json


def test_unknown_repo_revision_or_file_raise_client_errors(hub_server):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    api, repo_id = HfApi(), unique("errors")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "config.json")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "data.parquet", repo_type="dataset")
    api.create_repo(repo_id)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, ".gitattributes", revision="no-such-branch")
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(repo_id)
    assert conflict.value.response.status_code == 409
    api.create_repo(repo_id, exist_ok=True)
    assert api.file_exists(repo_id, ".gitattributes") and not api.file_exists(repo_id, "missing.json")


def test_restart_keeps_every_repo(hub_server_control, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi()
    model_id, dataset_id = unique("persist-model"), unique("persist-data")
    api.create_repo(model_id, private=True)
    api.upload_file(path_or_fileobj=b"\0weights" * 1000, path_in_repo="w.bin", repo_id=model_id)
    api.create_repo(dataset_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data.csv", repo_id=dataset_id,
                    repo_type="dataset")

    def everything():
        repos = [("model", m) for m in api.list_models(author="user")]
        repos += [("dataset", d) for d in api.list_datasets(author="user")]
        return {(kind, info.id): (info.sha, info.private) for kind, info in repos}

    before = everything()
    assert ("model", model_id) in before and ("dataset", dataset_id) in before
    hub_server_control.restart()
    assert everything() == before
    for repo_id, repo_type in [(model_id, "model"), (dataset_id, "dataset")]:
        info = api.repo_info(repo_id, repo_type=repo_type)
        assert info.sha == before[(repo_type, repo_id)][0]
    weights = hf_hub_download(model_id, "w.bin", force_download=True, cache_dir=tmp_path)
    assert Path(weights).read_bytes() == b"\0weights" * 1000


@pytest.mark.skipif(
    not (REPO_ROOT / "make_folds.py").exists() or not (REPO_ROOT / "data/sample/train_QC.jsonl").exists(),
    reason="make_folds.py or data/sample/train_QC.jsonl is not in the tree yet",
)
def test_make_folds_push_to_hub_roundtrip(hub_server, tmp_path):
    repo_id = unique("folds-qc")
    command = [sys.executable, "make_folds.py", "--train_file", "data/sample/train_QC.jsonl",
               "--test_file", "data/sample/test_QC.jsonl", "--output_dir", str(tmp_path / "folds"),
               "--push_to_hub", repo_id]
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)  # env: HF_ENDPOINT etc.
    assert run.returncode == 0, run.stderr[-3000:]

    from huggingface_hub import HfApi
    from utils_data import load_folded_dataset

    local = load_folded_dataset(str(tmp_path / "folds"))  # save_to_disk folder
    pulled = load_folded_dataset(repo_id)  # Hub id: load_dataset through the server
    assert "fold" in pulled["train"].column_names
    assert_same_dataset_dict(pulled, local)
    assert "fold_report.json" in HfApi().list_repo_files(repo_id, repo_type="dataset")


# ----------------------------------------------------------------------------------------------------------------
# Confinement: whatever the names and bodies, the server stays inside its storage and answers 400/413, never 500.
# These requests go through http.client, which sends the path as written (an HTTP client library would collapse
# "..", and quote "%"), to a second server with 1 MiB bounds, started with the command-line flags.
# ----------------------------------------------------------------------------------------------------------------
BOUND = 2**20  # --max_body_mb 1 --max_lfs_mb 1


@pytest.fixture(scope="module")
def confined_hub(tmp_path_factory):
    """(port, root): a server on root/storage holding user/ok, and beside the storage a planted file and a copy of
    user/ok's folder (repo.json, commits): what a request escaping the storage would find and could read or delete."""
    import shutil
    from urllib.parse import urlparse

    from tools.hub_server import LocalHub

    root = tmp_path_factory.mktemp("confined")
    hub = LocalHub(root / "storage", root / "server.log", server_args=["--max_body_mb", "1", "--max_lfs_mb", "1"])
    url = hub.start()
    try:
        port = urlparse(url).port
        assert request(port, "POST", "/api/repos/create", {"name": "ok"})[0] == 200
        (root / "beside.txt").write_text("planted beside the storage")
        shutil.copytree(root / "storage" / "repos" / "models" / "user" / "ok", root / "planted" / "ok")
        yield port, root
    finally:
        hub.stop()


def request(port, method, path, body=None, headers=None):
    """(status, parsed JSON or raw bytes) of one request sent as written."""
    import http.client

    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def outside_storage(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "storage" not in p.relative_to(root).parts[:1] and p.name != "server.log"}


def bad_names(root: Path) -> dict:
    """Name -> (as sent in a JSON body, as sent in a URL segment): absolute, '..', a way out to the planted folder,
    encoded once and twice, and empty."""
    from urllib.parse import quote

    planted = str(root / "planted")
    return {
        "absolute": (planted, quote(planted, safe="")),
        "dotdot": ("..", ".."),
        "escape": ("../../../planted", quote("../../../planted", safe="")),
        "encoded_slash": ("a%2Fb", "..%2F..%2F..%2Fplanted"),
        "encoded_dots": ("%2e%2e", "%2e%2e"),
        "double_encoded": ("%252e%252e", "%252e%252e"),
        "empty": ("", ""),
    }


def confinement_cases(root: Path) -> list:
    """(what, method, path, body) of requests that must each be refused with a 400."""
    ok = "/api/models/user/ok"
    cases = []
    for label, (in_body, in_url) in bad_names(root).items():
        # Names in a JSON body: create and delete (delete used to remove any folder holding a repo.json).
        for field_name in ("organization", "name", "type"):
            body = {"organization": "planted" if field_name != "organization" else in_body, "name": "ok",
                    "type": "model"} | {field_name: in_body}
            cases += [(f"create {field_name}={label}", "POST", "/api/repos/create", body),
                      (f"delete {field_name}={label}", "DELETE", "/api/repos/delete", body)]
        # The repo's namespace and name in the URL, on every route that takes them.
        for ns, name in ((in_url, "ok"), ("user", in_url), (in_url, in_url)):
            for prefix in (f"/api/models/{ns}/{name}", f"/api/datasets/{ns}/{name}"):
                cases += [(f"{prefix} {label}", "GET", prefix + suffix, None) for suffix in
                          ("", "/revision/main", "/tree/main", "/tree/main/x", "/refs", "/commits/main")]
                cases += [(f"{prefix} {label}", "POST", prefix + suffix, {}) for suffix in
                          ("/paths-info/main", "/preupload/main", "/commit/main", "/branch/b")]
                cases.append((f"{prefix} {label}", "DELETE", prefix + "/branch/b", None))
            for prefix in (f"/{ns}/{name}", f"/datasets/{ns}/{name}"):
                cases += [(f"{prefix} lfs {label}", "POST", prefix + ".git/info/lfs/objects/batch",
                           {"operation": "upload", "objects": []}),
                          (f"{prefix} lfs put {label}", "PUT", prefix + ".git/info/lfs/objects/" + "0" * 64, b"x"),
                          (f"{prefix} resolve {label}", "GET", prefix + "/resolve/main/config.json", None)]
        # Revisions, branches and paths in the URL.
        cases += [(f"rev {label}", "GET", f"{ok}/revision/{in_url}", None),
                  (f"tree rev {label}", "GET", f"{ok}/tree/{in_url}", None),
                  (f"commits {label}", "GET", f"{ok}/commits/{in_url}", None),
                  (f"preupload rev {label}", "POST", f"{ok}/preupload/{in_url}", {}),
                  (f"commit rev {label}", "POST", f"{ok}/commit/{in_url}", b""),
                  (f"branch {label}", "POST", f"{ok}/branch/{in_url}", {}),
                  (f"delete branch {label}", "DELETE", f"{ok}/branch/{in_url}", None),
                  (f"tree path {label}", "GET", f"{ok}/tree/main/{in_url}", None),
                  (f"resolve rev {label}", "GET", f"/user/ok/resolve/{in_url}/config.json", None),
                  (f"resolve path {label}", "GET", f"/user/ok/resolve/main/{in_url}", None)]
        # Revisions and paths in a body.
        path_value = in_body if label != "encoded_slash" else "..%2Fx"
        operations = {"file": {"path": path_value, "content": "aGk=", "encoding": "base64"},
                      "lfsFile": {"path": path_value, "algo": "sha256", "oid": "0" * 64, "size": 1},
                      "deletedFile": {"path": path_value}, "deletedFolder": {"path": path_value},
                      "copyFile": {"path": "copy.txt", "srcPath": path_value}}
        operations["copyFile srcRevision"] = {"path": "copy.txt", "srcPath": ".gitattributes", "srcRevision": in_body}
        for key, value in operations.items():
            ndjson = "\n".join(json.dumps(line) for line in [{"key": "header", "value": {"summary": "escape"}},
                                                             {"key": key.split()[0], "value": value}])
            cases.append((f"commit {key} {label}", "POST", f"{ok}/commit/main", ndjson))
        cases += [(f"preupload path {label}", "POST", f"{ok}/preupload/main",
                   {"files": [{"path": path_value, "sample": "", "size": 1}]}),
                  (f"paths-info {label}", "POST", f"{ok}/paths-info/main", f"paths={in_url}".encode()),
                  (f"branch startingPoint {label}", "POST", f"{ok}/branch/new-{label}", {"startingPoint": in_body})]
    # Bodies that are not what the endpoint reads.
    for body in (b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"{"):
        for path, method in (("/api/repos/create", "POST"), ("/api/repos/delete", "DELETE"),
                             (f"{ok}/preupload/main", "POST"), (f"{ok}/branch/b", "POST"),
                             ("/user/ok.git/info/lfs/objects/batch", "POST"), (f"{ok}/commit/main", "POST")):
            cases.append((f"{path} body {body!r}", method, path, body))
    cases += [("paths-info not UTF-8", "POST", f"{ok}/paths-info/main", b"paths=\xff"),
              ("preupload files not a list", "POST", f"{ok}/preupload/main", {"files": "x"}),
              ("preupload entry not an object", "POST", f"{ok}/preupload/main", {"files": [1]}),
              ("preupload sample not base64", "POST", f"{ok}/preupload/main",
               {"files": [{"path": "a", "sample": "!"}]}),
              ("preupload size not an int", "POST", f"{ok}/preupload/main", {"files": [{"path": "a", "size": "1"}]}),
              ("lfs objects not a list", "POST", "/user/ok.git/info/lfs/objects/batch", {"operation": "upload",
                                                                                          "objects": 3}),
              ("lfs object not an object", "POST", "/user/ok.git/info/lfs/objects/batch", {"operation": "upload",
                                                                                            "objects": [[]]}),
              ("create name not a string", "POST", "/api/repos/create", {"name": ["ok"]}),
              ("delete type not a string", "DELETE", "/api/repos/delete", {"name": "ok", "type": ["model"]}),
              ("commit line not an object", "POST", f"{ok}/commit/main", b'{"key": "header", "value": {}}\n[1]')]
    return cases


def test_no_request_escapes_the_storage(confined_hub):
    port, root = confined_hub
    before = outside_storage(root)
    assert "beside.txt" in before and "planted/ok/repo.json" in before
    sha = request(port, "GET", "/api/models/user/ok")[1]["sha"]
    cases = confinement_cases(root)
    assert len(cases) > 300
    wrong = []
    for what, method, path, body in cases:
        status, answer = request(port, method, path, body)
        if status != 400 or not isinstance(answer, dict) or "error" not in answer:
            wrong.append(f"{what}: {method} {path} {body!r:.80} -> {status} {answer!r:.200}")
    assert outside_storage(root) == before, "a request changed or deleted a file outside the storage"
    assert not wrong, f"{len(wrong)} of {len(cases)} requests not refused with a 400 JSON error:\n" + "\n".join(wrong)
    # The server is still up, its repo unchanged, and no refused upload left a file.
    assert request(port, "GET", "/api/models/user/ok")[1]["sha"] == sha
    assert not list((root / "storage" / "tmp").iterdir())
    assert not list((root / "storage" / "objects").glob("00/*"))


def test_oversized_bodies_are_refused_before_they_are_read(confined_hub):
    import http.client

    port, root = confined_hub
    ok = "/api/models/user/ok"
    endpoints = [("POST", "/api/repos/create"), ("DELETE", "/api/repos/delete"), ("POST", f"{ok}/preupload/main"),
                 ("POST", f"{ok}/paths-info/main"), ("POST", f"{ok}/commit/main"), ("POST", f"{ok}/branch/big"),
                 ("POST", "/user/ok.git/info/lfs/objects/batch"), ("PUT", "/user/ok.git/info/lfs/objects/" + "a" * 64)]
    for method, path in endpoints:
        # Only the headers are sent: the 413 must come from the declared length, without waiting for the bytes.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest(method, path)
        connection.putheader("Content-Length", str(BOUND + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413, (method, path, response.status, response.read())
        assert "error" in json.loads(response.read())
        connection.close()

    # Chunked (no declared length), one byte over the bound: refused at the bound, nothing stored. The bytes hash
    # to the oid, so without the bound this upload would be accepted.
    data = b"\1" * (BOUND + 1)
    oid = hashlib.sha256(data).hexdigest()
    for method, path in [("PUT", f"/user/ok.git/info/lfs/objects/{oid}"), ("POST", f"{ok}/commit/main")]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        chunks = (data[i:i + 65536] for i in range(0, len(data), 65536))
        connection.request(method, path, body=chunks, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413, (method, path, response.status, response.read())
        connection.close()
    assert not (root / "storage" / "objects" / oid[:2] / oid).exists()
    assert not list((root / "storage" / "tmp").iterdir())

    # The LFS batch API refuses an object announced over the bound, and accepts one at the bound.
    status, answer = request(port, "POST", "/user/ok.git/info/lfs/objects/batch", {
        "operation": "upload", "objects": [{"oid": oid, "size": BOUND + 1}, {"oid": "b" * 64, "size": BOUND}]})
    assert status == 200
    assert answer["objects"][0]["error"]["code"] == 413 and "actions" in answer["objects"][1]
