"""``smartta``: the operators' and developers' command line.

chain/ owns the root group and the protocol commands (``rlp``, ``block``, ``demo``); the other
parts add their groups (``node``, ``network``, ``indexer``, ``api``, ...) through the
``smartta.commands`` entry-point group, loaded only when used, so chain/ imports nothing of
theirs and ``smartta --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from chain.qbft import extra_data as xd
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BlockHeader, HeaderError
from chain.qbft.quorum import quorum
from chain.qbft.seals import SealError, recover

err = Console(stderr=True)


class LazyGroup(click.Group):
    """A group whose subcommands may come from entry points, imported on first use."""

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group="smartta.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        ep = self._plugins().get(cmd_name)
        if ep is None:
            return None
        try:
            loaded = ep.load()
        except ImportError as exc:
            raise click.ClickException(
                f"'smartta {cmd_name}' needs an optional part that is not installed ({exc.name}); "
                "run `make setup` or `pip install -e '.[dev]'`"
            ) from exc
        if not isinstance(loaded, click.Command):
            raise click.ClickException(f"entry point {ep.value} is not a click command")
        return loaded


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smartta-ledger", prog_name="smartta")
def main() -> None:
    """SMART-TA Ledger: run and inspect a Besu-compatible QBFT ledger for a transfer agent."""


# ---- rlp ---------------------------------------------------------------------------------

RLP_TYPES = ["QBFT_EXTRA_DATA"]


@main.group()
def rlp() -> None:
    """Encode and decode RLP structures as `besu rlp` does."""


def _address(text: str) -> bytes:
    raw = text.strip().removeprefix("0x").removeprefix("0X")
    try:
        out = bytes.fromhex(raw)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a hex address") from None
    if len(out) != 20:
        raise click.BadParameter(f"{text!r} is {len(out)} bytes, an address is 20")
    return out


@rlp.command("encode")
@click.option("--type", "type_", type=click.Choice(RLP_TYPES, case_sensitive=False),
              default="QBFT_EXTRA_DATA", show_default=True, help="Structure to encode.")
@click.option("--from", "from_", type=click.File("r"), default="-",
              help="JSON array of validator addresses (default: standard input).")
def rlp_encode(type_: str, from_: Any) -> None:
    """Print the genesis extraData for a list of validators, in the order given (as Besu)."""
    try:
        data = json.load(from_)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"input is not JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, list) or not all(isinstance(a, str) for a in data):
        raise click.ClickException('expected a JSON array of addresses, e.g. ["0xbe06…", "0x5ff6…"]')
    validators = [_address(a) for a in data]
    click.echo("0x" + xd.encode_genesis(validators).hex())


@rlp.command("decode")
@click.option("--type", "type_", type=click.Choice(RLP_TYPES, case_sensitive=False),
              default="QBFT_EXTRA_DATA", show_default=True, help="Structure to decode.")
@click.argument("hex_value", metavar="HEX")
def rlp_decode(type_: str, hex_value: str) -> None:
    """Print the fields of QBFT extraData as JSON."""
    try:
        raw = bytes.fromhex(hex_value.strip().removeprefix("0x"))
    except ValueError:
        raise click.ClickException("HEX is not a hex string") from None
    try:
        extra = xd.decode(raw)
    except xd.ExtraDataError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(extra.to_json(), indent=2))


# ---- block -------------------------------------------------------------------------------


@main.group()
def block() -> None:
    """Inspect QBFT blocks."""


def inspect_block(obj: dict[str, Any], validators: list[bytes] | None) -> tuple[dict[str, Any], list[str]]:
    """Recompute what Besu's rules say about a block; returns the report and its problems."""
    problems: list[str] = []
    header = BlockHeader.from_rpc(obj)
    extra = xd.decode(header.extra_data)
    computed = block_hash(header)
    seal_hash = commit_seal_hash(header)
    committers: list[str] = []
    for i, seal in enumerate(extra.seals):
        try:
            committers.append("0x" + recover(seal, seal_hash).hex())
        except SealError as exc:
            problems.append(f"commit seal {i}: {exc}")
    if len(set(committers)) != len(committers):
        problems.append("two commit seals come from the same validator")
    claimed = obj.get("hash")
    report: dict[str, Any] = {
        "number": header.number,
        "hash": "0x" + computed.hex(),
        "claimedHash": claimed,
        "hashMatches": None if claimed is None else claimed.lower() == "0x" + computed.hex(),
        "commitSealHash": "0x" + seal_hash.hex(),
        "round": extra.round,
        "vote": None if extra.vote is None else extra.vote.to_json(),
        "proposer": "0x" + header.coinbase.hex(),
        "validators": ["0x" + v.hex() for v in extra.validators],
        "committers": committers,
    }
    if report["hashMatches"] is False:
        problems.append(f"recomputed hash 0x{computed.hex()} differs from the block's {claimed}")
    known = validators if validators is not None else (list(extra.validators) if header.number else [])
    if header.number > 0:
        outsiders = [c for c in committers if bytes.fromhex(c[2:]) not in set(known)]
        if outsiders:
            problems.append(f"committers not in the validator set: {', '.join(outsiders)}")
        need = quorum(len(set(known)))
        report["quorum"] = need
        if len(set(committers)) < need:
            problems.append(f"{len(set(committers))} distinct committers, quorum is {need}")
    return report, problems


@block.command("inspect")
@click.option("--from", "from_", type=click.File("r"), default="-",
              help="A block as eth_getBlockByNumber returns it (JSON, or a JSON-RPC response).")
@click.option("--validators", "validators_file", type=click.File("r"), default=None,
              help="JSON array of the validators after the parent (default: those in the block).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def block_inspect(from_: Any, validators_file: Any, as_json: bool) -> None:
    """Recompute a block's hash and commit-seal hash by Besu's rules and recover its committers.

    Exits 1 when the recomputed hash differs from the block's `hash`, when a seal is malformed
    or from outside the validator set, or when the seals fall short of quorum.
    """
    try:
        obj = json.load(from_)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"block is not JSON: {exc.msg} (line {exc.lineno})") from exc
    if isinstance(obj, dict) and "result" in obj and "jsonrpc" in obj:
        obj = obj["result"]
    if not isinstance(obj, dict):
        raise click.ClickException("expected a block object (or a JSON-RPC response holding one)")
    validators = None
    if validators_file is not None:
        validators = [_address(a) for a in json.load(validators_file)]
    try:
        report, problems = inspect_block(obj, validators)
    except (HeaderError, xd.ExtraDataError) as exc:
        raise click.ClickException(f"block cannot be decoded: {exc}") from exc
    if as_json:
        click.echo(json.dumps({**report, "problems": problems}, indent=2))
    else:
        out = Console()
        for key, value in report.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            out.print(f"[bold]{key:>15}[/bold]  {shown}")
        for p in problems:
            out.print(f"[red]problem[/red]: {p}")
        if not problems:
            out.print("[green]hash and seals verify by Besu's rules[/green]")
    if problems:
        sys.exit(1)


@main.command()
@click.option("--records", default=8, show_default=True, help="Ledger records to build.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Directory for genesis.json and records.json (default: a temporary one).")
def demo(records: int, out: Path | None) -> None:
    """Build a QBFT genesis, seal blocks, chain attested records and verify all of it."""
    from chain.demo import run

    sys.exit(run(records=records, out=out))


if __name__ == "__main__":
    main()
