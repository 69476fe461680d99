"""``smartta node …`` and ``smartta network …``: run a node, and create and drive networks.

Every network command takes ``--dir networks/NAME``; keystore passwords come from
``SMARTTA_KEYSTORE_PASSWORD`` or a prompt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console

from chain.attest.keys import PASSWORD_ENV, KeystoreError
from node.network.init import default_spec, init_network
from node.network.spec import NetworkSpec, SpecError

console = Console()
DIR_OPTION = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                          required=True, help="The network's folder, e.g. networks/local.")


def password(*, confirm: bool = False) -> str:
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value
    if not os.isatty(0):
        raise click.ClickException(
            f"no keystore password: set {PASSWORD_ENV} or run the command in a terminal")
    return str(click.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm))


@click.group()
def network() -> None:
    """Create, check and run a QBFT consortium (locally, or generated for Besu)."""


@network.command("init")
@DIR_OPTION
@click.option("--validators", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--observers", type=click.IntRange(0, 16), default=0, show_default=True)
@click.option("--chain-id", type=click.IntRange(1), default=1337, show_default=True)
@click.option("--block-period", type=click.IntRange(1), default=1, show_default=True,
              help="blockperiodseconds")
@click.option("--request-timeout", type=click.IntRange(1), default=None,
              help="requesttimeoutseconds (default: twice the block period)")
@click.option("--organisation", default="operator", show_default=True)
@click.option("--base-port", type=int, default=0, show_default=True,
              help="Offset added to every default port (run several networks side by side).")
@click.option("--seeded", is_flag=True,
              help="Derive keys from fixed seeds: a throwaway devnet or test only, never real.")
@click.option("--dev", "dev_mode", is_flag=True,
              help="Enable evm_* development methods (needs --validators 1).")
def network_init(directory: Path, validators: int, observers: int, chain_id: int, block_period: int,
                 request_timeout: int | None, organisation: str, base_port: int, seeded: bool,
                 dev_mode: bool) -> None:
    """Write network.yaml, the node keys, genesis.json and network.lock.

    Re-running keeps every existing key and refuses to change an existing genesis.
    """
    try:
        if (directory / "network.yaml").exists():
            spec = NetworkSpec.load(directory)
            console.print(f"using the existing spec {directory / 'network.yaml'}")
        else:
            spec = default_spec(directory.name, validators=validators, observers=observers,
                                chain_id=chain_id, block_period=block_period,
                                request_timeout=request_timeout, organisation=organisation,
                                base_port=base_port, dev_mode=dev_mode, seeded=seeded)
        new_keys = any(not (directory / "keys" / n.name / "key.json").exists() for n in spec.nodes)
        spec, genesis = init_network(directory, spec, password(confirm=new_keys),
                                     scrypt_n=2**14 if spec.seeded_keys else None)
    except (SpecError, KeystoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    if spec.seeded_keys:
        console.print("[yellow]keys are derived from fixed seeds: this network is a throwaway "
                      "devnet; never put value or real data on it[/yellow]")
    console.print(f"network [bold]{spec.name}[/bold]: chain id {spec.chain_id}, "
                  f"{len(spec.validators)} validators, genesis 0x{genesis.hash.hex()}")
    for n in spec.nodes:
        console.print(f"  {n.name:<12} {','.join(n.roles):<20} {n.address}  "
                      f"rpc http://{n.host}:{n.rpc_http_port}")


@network.command("show")
@DIR_OPTION
def network_show(directory: Path) -> None:
    """Print the network spec as JSON."""
    try:
        spec = NetworkSpec.load(directory)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"name": spec.name, "chain_id": spec.chain_id,
                           "nodes": [n.__dict__ for n in spec.nodes]}, indent=2))


# ---- operator tooling: doctor, keys, health reports, join bundles, RPC tokens -------------------

def _load_spec(directory: Path) -> NetworkSpec:
    try:
        return NetworkSpec.load(directory)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc


def _rpc_overrides(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{value!r}: give NODE=URL, e.g. validator-1=http://10.0.0.5:8545",
                                     param_hint="--rpc")
        out[name] = url
    return out


RPC_OPTION = click.option("--rpc", "rpc", multiple=True, metavar="NODE=URL",
                          help="A node's JSON-RPC URL, when not the spec's host and port.")


@network.command("doctor")
@DIR_OPTION
@click.option("--offline", is_flag=True, help="Skip asking running nodes.")
@RPC_OPTION
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds per RPC call.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def network_doctor(directory: Path, offline: bool, rpc: tuple[str, ...], timeout: float,
                   as_json: bool) -> None:
    """Preflight: name each problem of the network folder (and of running nodes) and its fix."""
    from node.network.doctor import diagnose

    report = diagnose(directory, live_checks=not offline, urls=_rpc_overrides(rpc), timeout=timeout)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        from rich.table import Table

        if report.findings:
            table = Table("check", "where", "problem", "fix", show_lines=True)
            for f in report.findings:
                colour = "red" if f.severity == "error" else "yellow"
                table.add_row(f"[{colour}]{f.check}[/{colour}]", f.subject, f.problem, f.fix)
            console.print(table)
        for note in report.notes:
            console.print(f"[dim]{note}[/dim]")
        errors = sum(f.severity == "error" for f in report.findings)
        console.print("[green]no problems found[/green]" if not report.findings else
                      f"{errors} error(s), {len(report.findings) - errors} warning(s)")
    if not report.ok:
        raise SystemExit(1)


@network.command("export-keys")
@DIR_OPTION
@click.option("--node", "nodes", multiple=True, help="Only these nodes (default: every local node).")
@click.option("--format", "fmt", type=click.Choice(["besu", "kubernetes"]), default="besu",
              show_default=True, help="besu: <out>/<node>/key (--node-private-key-file); "
              "kubernetes: one Secret manifest per node.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Default: <dir>/keys/export/<format> (git-ignored).")
def network_export_keys(directory: Path, nodes: tuple[str, ...], fmt: str, out: Path | None) -> None:
    """Write node keys UNENCRYPTED in Besu's layout or as Kubernetes Secrets."""
    import yaml

    from chain.attest.keys import open_secret
    from node.network import besu, kubernetes
    from node.network.init import KEYS_DIR, KEYSTORE_FILE

    spec = _load_spec(directory)
    chosen = [spec.node(n) for n in nodes] if nodes else [n for n in spec.nodes if not n.remote]
    out = out or directory / KEYS_DIR / "export" / fmt
    secret_password = password()
    for n in chosen:
        try:
            secret = open_secret(directory / KEYS_DIR / n.name / KEYSTORE_FILE, secret_password)
        except KeystoreError as exc:
            raise click.ClickException(str(exc)) from exc
        if fmt == "besu":
            target = out / n.name
            target.mkdir(parents=True, exist_ok=True)
            for name, text in besu.besu_key_files(secret).items():
                path = target / name
                path.write_text(text)
                if name == "key":
                    path.chmod(0o600)
        else:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{n.name}-key.yaml"
            path.write_text(yaml.safe_dump(kubernetes.key_secret_manifest(spec, n, secret), sort_keys=False))
            path.chmod(0o600)
    console.print(f"wrote {len(chosen)} private key(s) to {out}: they are not encrypted; move them to "
                  "the nodes (or `kubectl apply -f` them) and delete this copy")


@network.command("operator-key")
@DIR_OPTION
@click.option("--name", default="operator", show_default=True)
def network_operator_key(directory: Path, name: str) -> None:
    """Create the operator's signing key (for health reports); never replaces one."""
    import secrets as random

    from chain.attest.keys import write_keystore
    from chain.qbft.seals import address_of
    from node.network.init import KEYS_DIR, KEYSTORE_FILE

    path = directory / KEYS_DIR / name / KEYSTORE_FILE
    if path.exists():
        raise click.ClickException(f"{path} already exists; an operator key is never replaced")
    secret = random.token_bytes(32)
    try:
        write_keystore(path, secret, password(confirm=True))
    except KeystoreError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"operator key 0x{address_of(secret).hex()} in {path}")


@network.command("health")
@DIR_OPTION
@click.option("--sign", "do_sign", is_flag=True, help="Sign the report with the operator's key.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keystore to sign with (default: <dir>/keys/operator/key.json).")
@click.option("--verify", "verify_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Check a signed report instead of making one.")
@click.option("--signer", default=None, help="With --verify: accept only this operator address.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report to this file (default: print it).")
@RPC_OPTION
@click.option("--timeout", type=float, default=2.0, show_default=True)
def network_health(directory: Path, do_sign: bool, key: Path | None, verify_file: Path | None,
                   signer: str | None, out: Path | None, rpc: tuple[str, ...], timeout: float) -> None:
    """A JSON health report of every node (height, head age, peers, validators, signer metrics,
    readiness, genesis and config hashes); --sign signs it, --verify FILE checks one."""
    from chain.attest.keys import open_keystore
    from node.network import health
    from node.network.init import KEYS_DIR, KEYSTORE_FILE, read_lock

    lock = read_lock(directory)
    if lock is None:
        raise click.ClickException(f"{directory} has no network.lock; run `smartta network init` first")
    if verify_file is not None:
        try:
            signed = json.loads(verify_file.read_text())
            report = health.verify(signed, signer=signer, lock=lock)
        except (ValueError, health.HealthError) as exc:
            raise click.ClickException(f"{verify_file}: {exc}") from exc
        console.print(f"[green]valid[/green]: signed by {report['signer']} at {report['created']}, "
                      f"network {report['network']}, genesis {report['genesis_hash']}")
        for problem in health.problems(report):
            console.print(f"  [yellow]{problem}[/yellow]")
        return
    spec = _load_spec(directory)
    report = health.collect(spec, lock, urls=_rpc_overrides(rpc), timeout=timeout)
    document: dict[str, object] = report
    if do_sign:
        path = key or directory / KEYS_DIR / "operator" / KEYSTORE_FILE
        if not path.exists():
            raise click.ClickException(f"no operator key at {path}; create one with "
                                       f"`smartta network operator-key --dir {directory}` or pass --key")
        try:
            document = health.sign(report, open_keystore(path, password()))
        except KeystoreError as exc:
            raise click.ClickException(str(exc)) from exc
    text = json.dumps(document, indent=2) + "\n"
    if out is not None:
        out.write_text(text)
        console.print(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@network.group("join-bundle")
def network_join_bundle() -> None:
    """Hand a joining organisation the network, and take its join request back."""


@network_join_bundle.command("export")
@DIR_OPTION
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def join_bundle_export(directory: Path, out: Path) -> None:
    """Write the bundle: genesis and its hash, bootnodes, the network spec (no secrets)."""
    from node.network.bundle import BundleError, export

    try:
        bundle = export(directory)
    except (BundleError, SpecError) as exc:
        raise click.ClickException(str(exc)) from exc
    out.write_text(json.dumps(bundle, indent=2) + "\n")
    console.print(f"wrote {out}; send the joining organisation the genesis hash "
                  f"{bundle['genesis_hash']} separately, so it can check the bundle")


@network_join_bundle.command("import")
@click.argument("bundle_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@DIR_OPTION
@click.option("--organisation", required=True)
@click.option("--node", "node_name", required=True, help="Name of your new node.")
@click.option("--role", type=click.Choice(["validator", "rpc", "observer", "bootnode"]),
              default="validator", show_default=True)
@click.option("--host", required=True, help="Address or DNS name peers reach your node at.")
@click.option("--p2p-port", type=int, default=30303, show_default=True)
@click.option("--genesis-hash", "expected_hash", default=None,
              help="The genesis hash the consortium gave you out of band (strongly advised).")
def join_bundle_import(bundle_file: Path, directory: Path, organisation: str, node_name: str, role: str,
                       host: str, p2p_port: int, expected_hash: str | None) -> None:
    """Check the bundle, create your node's key and network folder, write join-request.json."""
    from node.network.bundle import REQUEST_FILE, BundleError, import_bundle

    try:
        bundle = json.loads(bundle_file.read_text())
        _spec, request = import_bundle(bundle, directory, organisation=organisation, node_name=node_name,
                                       role=role, host=host, p2p_port=p2p_port,
                                       password=password(confirm=True), expected_hash=expected_hash)
    except (ValueError, BundleError, SpecError, KeystoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    if expected_hash is None:
        console.print("[yellow]the genesis hash was not checked against one from the consortium "
                      "(--genesis-hash): the bundle is only as trustworthy as its channel[/yellow]")
    console.print(f"joined {request['network']} as {node_name}; send {directory / REQUEST_FILE} "
                  "to the consortium")


@network_join_bundle.command("accept")
@click.argument("request_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@DIR_OPTION
def join_bundle_accept(request_file: Path, directory: Path) -> None:
    """Add a joining organisation's node to network.yaml and regenerate allowlists and configs."""
    from node.network.bundle import BundleError, accept

    try:
        request = json.loads(request_file.read_text())
        accept(directory, request, password())
    except (ValueError, BundleError, SpecError, KeystoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"added {request['node']['name']} of {request['organisation']}; redeploy the "
                  "allowlists (perm_reloadPermissionsFromFile)"
                  + (f", then vote {request['candidate_validator']} in" if request.get("candidate_validator")
                     else ""))


@network.command("rpc-token")
@DIR_OPTION
@click.option("--subject", required=True, help="Who the token is for (the JWT 'sub').")
@click.option("--ttl", type=click.IntRange(60), default=86400, show_default=True, help="Seconds.")
@click.option("--permission", "permissions", multiple=True, default=("eth:*", "net:*", "web3:*"),
              show_default=True, help="Besu permission, group:method.")
def network_rpc_token(directory: Path, subject: str, ttl: int, permissions: tuple[str, ...]) -> None:
    """Mint a JWT the RPC tier accepts (ES256, signed with the network's RPC key)."""
    from node.network import jwt
    from node.network.init import KEYS_DIR

    try:
        token = jwt.mint(directory / KEYS_DIR, password(), subject=subject, ttl_seconds=ttl,
                         permissions=list(permissions))
    except KeystoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(token)


@click.group()
def node() -> None:
    """Run one node of a network in the foreground."""
