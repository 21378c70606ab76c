"""`python main.py deploys status|pause|resume|release|approve|refuse`: the gates on a release, for people."""
from __future__ import annotations

import getpass
import json
import time
from typing import Any

from shared.config import Secrets
from shared.core.gates import decide_gate, freeze_windows
from shared.log import logger
from shared.wiring import Services


def deploys(config: Any, args: Any) -> int:
    from shared import gates

    services = Services(config=config, secrets=Secrets.from_env())
    log = logger.bind(trigger="cli")
    by = (getattr(args, "by", None) or getpass.getuser())[:80]
    if args.verb in ("approve", "refuse"):
        from shared.adapters.pubsub import GooglePublisher

        decision = {"approval": args.verb, "tag": args.tag, "reason": args.reason, "requested_by": by}
        message_id = GooglePublisher(config.project.id).publish(config.topics.rollback, decision)
        print(f"{args.verb} of {args.tag} requested ({message_id}). Watch the release thread in Slack.")
        return 0
    if args.verb == "status":
        state, _ = gates.read(services)
        windows = freeze_windows(config.gates.freeze)
        gate = decide_gate(time.time(), windows, state.paused)
        print(json.dumps({"gate": gate.action, "reason": gate.reason, "until": gate.until,
                          **state.to_dict()}, indent=2))
        return 0
    if args.verb == "pause":
        print("paused" if gates.pause(services, by, args.reason, log) else "already paused: nothing changed")
        return 0
    if args.verb == "resume":
        answer = gates.resume(services, by, log)
        print("resumed" + (f"; {json.dumps(answer.body)}" if answer is not None else ""))
        return 0 if answer is None or answer.status < 300 else 1
    answer = gates.let_go(services, log, by=by, reason=args.reason)
    if answer is None:
        print("nothing is held: nothing started")
        return 1
    print(json.dumps({"answer": answer.status, **answer.body}))
    return 0 if answer.status < 300 else 1
