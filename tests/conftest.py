"""The whole suite: the local clouds of one test run share one Pub/Sub emulator (its JVM's start is the slow part of a
cloud's), each emptying it of the last cloud's topics and subscriptions; tests of the local cloud's own life cycle
turn the sharing off."""
import os

from localcloud.cloud import SHARE_EMULATOR_ENV

os.environ.setdefault(SHARE_EMULATOR_ENV, "1")
