"""A fake Cloud Run Admin API v2 (Services, Revisions, Jobs, Executions, WorkerPools) that the real `run_v2` clients talk to.

Why it exists: no emulator of Cloud Run exists, and the deploy pipeline's correctness hangs on a few behaviours of
the real API, which this fake keeps (see /work/shared/reference/LOCAL-GCP.md):
- a new revision is made only when the template changes; traffic-only updates make none;
- an explicit `template.revision` must be new in the service (ALREADY_EXISTS), start with `<service>-`; without
  one, the name is generated (`<service>-0000N-xyz`);
- traffic percents sum to 100 and each entry names an existing revision (or the one this very update creates), or
  is LATEST; a tag gives its revision its own URL;
- UpdateService / CreateService are long-running: the operation is done when the new revision is ready, after
  `scenario.delay("revision_ready")` seconds (a traffic-only update after `scenario.delay("traffic")`), worked
  out on a background thread so GetOperation says done=false meanwhile; until then the service goes on routing as
  before (`traffic_statuses` and `observed_generation` are what is served, `traffic` and `generation` what was
  asked), and `reconciling` is true;
- the operation's metadata and response are the resource itself, as the real API does;
- a stale `etag` is ABORTED (AIP-154); unknown names are NOT_FOUND;
- RunJob starts an Execution at once (its name is in the operation's metadata) that ends after
  `scenario.delay("migration")` seconds, succeeding or failing as `scenario.behaviour_for_image(image).migration`
  says; a failed execution also fails the RunJob operation.

URLs: the service's `uri` is `{router_base_url}/s/<service>` and a tag's is `{router_base_url}/t/<tag>---<service>`
(path based, since `*.localhost` may not resolve); `localcloud.router` serves them, asking `revision_for_url`.
`router_base_url` may be set after construction (the router starts after this fake): URLs are computed when read.
"""
from __future__ import annotations

from localcloud.fake_run.kit import SERVICE_URL_PREFIX, TAG_SEPARATOR, TAG_URL_PREFIX, Route
from localcloud.fake_run.services import FakeCloudRun

__all__ = ["FakeCloudRun", "Route", "SERVICE_URL_PREFIX", "TAG_SEPARATOR", "TAG_URL_PREFIX"]
