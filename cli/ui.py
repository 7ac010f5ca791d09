"""``ledger ui``: serve mission control (the web UI) on this machine."""

from __future__ import annotations

import click

from cli.common import pass_app
from cli.replaying import open_history, source_option


@click.command("ui")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback also needs --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --host (anyone who reaches it with the token reads the history).")
@click.option("--no-open", is_flag=True, help="Do not open a browser; just print the URL.")
@source_option
@pass_app
def ui_cmd(app, port: int, host: str, allow_remote: bool, no_open: bool, source: str) -> None:
    """Serve the web UI (timeline, scrubber, decisions, files and blame, audits) and
    print its URL, with the access token, on standard output.

    The server listens on 127.0.0.1 only (a random free port unless --port), answers
    only requests carrying the token (URL once, then a cookie) and naming it in the
    Host header, and shows new events as they are recorded. Ctrl-C stops it.

    \b
    Examples:
      ledger ui
      ledger ui --port 8765 --no-open
      ledger ui --source hub          # every laptop's events, from the team hub
    """
    import time
    import webbrowser

    from ui.server import UIServer

    history = open_history(app, source)
    if host not in ("127.0.0.1", "localhost", "::1") and allow_remote:
        click.echo(f"warning: serving on {host}: other machines can reach this UI; "
                   "only the token protects the ledger's history", err=True)
    try:
        server = UIServer(history, host=host, port=port, allow_remote=allow_remote,
                          analytics_url=app.settings.analytics_url)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server.start()
    click.echo(server.url)
    if not no_open:
        webbrowser.open(server.url)
    try:
        while server.thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
