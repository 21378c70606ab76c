"""Moving a release unit: the one way API traffic, worker traffic and the frontend are set to a unit.

The deploy's restore (after a failed step) and the rollback both call `move_unit`; the deploy's publish step and
its first-release snapshot use the same frontend copy. The caller holds the lease and says which parts move.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection

from shared.core.traffic import all_to
from shared.errors import PermanentError
from shared.frontend import cache_control, plan_publish, release_prefix
from shared.ports import StoredObject
from shared.release import Unit
from shared.wiring import Services

COPY_WORKERS = 32  # parallel server-side copies of the frontend (the storage client keeps as many connections)
ROLES = ("api", "worker", "frontend")


def frontend_prefix(config: Any, tag: str | None) -> str:
    """Where a release's built frontend is kept in the state bucket (the baseline's when `tag` is None): `tag` is the
    release's identity (see `shared.frontend.release_prefix`)."""
    return release_prefix(config.frontend.releases_prefix, tag)


def move_unit(services: Services, unit: Unit, roles: Collection[str] = ROLES) -> None:
    """Sets `roles` of the live system to `unit`: the API's traffic first, then the worker's traffic and the
    frontend side by side (neither waits for the other). Raises what the cloud raised; a retry sets the same."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    config = services.config
    if "api" in roles:
        services.run.set_traffic(config.api.service, all_to(unit.api))
    with ThreadPoolExecutor(max_workers=1) as side:
        frontend = side.submit(copy_frontend, services, unit.frontend_prefix) if "frontend" in roles else None
        if "worker" in roles:
            services.run.set_traffic(config.worker.service, all_to(unit.worker))
    if frontend is not None:
        frontend.result()


def copy_frontend(services: Services, prefix: str,
                  before_index: Callable[[], None] | None = None) -> tuple[int, dict[str, str]]:
    """(files copied, path -> md5 of the frontend under `prefix`) after copying what differs to the live bucket.
    Both sides are listed at once; each copy is server-side and carries the source's metadata; assets go first,
    then the pages, and index.html last, just after `before_index` (which may raise to keep it as it was)."""
    objects = services.objects
    state_bucket, live_bucket = services.config.state.bucket, services.config.frontend.bucket
    with ThreadPoolExecutor(max_workers=COPY_WORKERS) as pool:
        listed_live = pool.submit(objects.list, live_bucket)
        stored = {o.name[len(prefix):]: o for o in objects.list(state_bucket, prefix)}
        live = {o.name: o.md5_hash or "" for o in listed_live.result()}
        if not stored:
            raise PermanentError(f"gs://{state_bucket}/{prefix}: expected the built frontend, found nothing")
        source = {path: o.md5_hash or "" for path, o in stored.items()}
        plan = plan_publish(source, live)

        def copy(path: str) -> None:
            objects.copy(state_bucket, prefix + path, live_bucket, path, cache_control=cache_control(path),
                         like=stored[path])

        list(pool.map(copy, plan.assets))
        list(pool.map(copy, [p for p in plan.pages if p != "index.html"]))
    if "index.html" in plan.pages:
        if before_index is not None:
            before_index()
        copy("index.html")
    return len(plan.copies), source


def snapshot_baseline(services: Services, prefix: str) -> None:
    """Before the first release ever, keeps a copy of what the live bucket serves under `prefix`, so it can be
    restored like any release's frontend. Does nothing when the copy exists."""
    objects = services.objects
    config = services.config
    if objects.list(config.state.bucket, prefix):
        return

    def keep(item: StoredObject) -> None:
        objects.copy(config.frontend.bucket, item.name, config.state.bucket, prefix + item.name,
                     cache_control=cache_control(item.name), like=item)

    with ThreadPoolExecutor(max_workers=COPY_WORKERS) as pool:
        list(pool.map(keep, objects.list(config.frontend.bucket)))
