"""Cloud Storage: JSON records guarded by generation preconditions, and the objects of the frontend.

Every write of a record is create-if-absent (`if_generation_match=0`) or compare-and-swap (the generation read);
a lost race surfaces as our `PreconditionFailed`, never as a silent overwrite.
"""
from __future__ import annotations

import builtins
import json
from typing import Any

from shared import clients
from shared.errors import NotFound, PreconditionFailed, from_google
from shared.ports import Objects, Record, RecordStore, StoredObject
from shared.record_shape import Unreadable


class GcsRecords:
    """JSON records in one bucket."""

    def __init__(self, project: str, bucket: str) -> None:
        self._project = project
        self._bucket_name = bucket

    def _bucket(self) -> Any:
        return clients.storage(self._project).bucket(self._bucket_name)

    def read(self, name: str) -> Record | None:
        from google.api_core import exceptions as gexc

        blob = self._bucket().blob(name)
        try:
            raw = blob.download_as_bytes()
        except gexc.NotFound:
            return None
        except Exception as error:  # noqa: BLE001 - mapped to our tree
            raise from_google(error, f"reading gs://{self._bucket_name}/{name}") from error
        try:
            data = json.loads(raw)
        except ValueError:
            data = Unreadable(repr(raw[:60]))
        return Record(data=data, generation=int(blob.generation))

    def _write(self, name: str, data: dict[str, Any], generation: int) -> Record:
        blob = self._bucket().blob(name)
        body = json.dumps(data, sort_keys=True, indent=1)
        try:
            blob.upload_from_string(body, content_type="application/json", if_generation_match=generation)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"writing gs://{self._bucket_name}/{name} at generation {generation}") from error
        return Record(data=data, generation=int(blob.generation))

    def create(self, name: str, data: dict[str, Any]) -> Record:
        return self._write(name, data, 0)

    def swap(self, name: str, data: dict[str, Any], generation: int) -> Record:
        return self._write(name, data, generation)

    def list(self, prefix: str) -> list[str]:
        try:
            return [blob.name for blob in clients.storage(self._project).list_blobs(self._bucket_name, prefix=prefix)]
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"listing gs://{self._bucket_name}/{prefix}") from error

    def changed_since(self, prefix: str, since: float) -> builtins.list[str]:
        try:  # a listing carries each object's `updated`: no read of any record
            return [blob.name for blob in clients.storage(self._project).list_blobs(self._bucket_name, prefix=prefix)
                    if blob.updated is not None and blob.updated.timestamp() >= since]
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"listing gs://{self._bucket_name}/{prefix}") from error


class GcsObjects:
    """The frontend's objects: listing with checksums, server-side copy with metadata, upload, delete."""

    def __init__(self, project: str) -> None:
        self._project = project

    def _client(self) -> Any:
        return clients.storage(self._project)

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        try:
            return [
                StoredObject(b.name, b.md5_hash, int(b.size or 0), b.content_type, b.cache_control,
                             b.content_encoding, b.content_disposition, b.content_language, b.metadata)
                for b in self._client().list_blobs(bucket, prefix=prefix)
            ]
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"listing gs://{bucket}/{prefix}") from error

    def copy(self, source_bucket: str, source: str, bucket: str, name: str, *, cache_control: str,
             like: StoredObject | None = None) -> None:
        """Copies server-side (nothing passes through us) with the caching the live object needs.

        With the source's metadata at hand (`like`, from a listing) it is one rewrite request that carries that
        metadata and the caching: a rewrite with a body sets the destination's metadata to exactly that body, so
        everything the object had is sent again. Without it, a copy then a patch of the caching (two requests).
        """
        client = self._client()
        try:
            source_blob = client.bucket(source_bucket).blob(source)
            if like is None:
                copied = client.bucket(source_bucket).copy_blob(source_blob, client.bucket(bucket), name)
                copied.cache_control = cache_control
                copied.patch()
                return
            destination = client.bucket(bucket).blob(name)
            for attribute in ("content_type", "content_encoding", "content_disposition", "content_language", "metadata"):
                if getattr(like, attribute):
                    setattr(destination, attribute, getattr(like, attribute))
            destination.cache_control = cache_control
            token, _, _ = destination.rewrite(source_blob)
            while token:  # large objects, or another location or class: the service asks to be called again
                token, _, _ = destination.rewrite(source_blob, token=token)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"copying gs://{source_bucket}/{source} to gs://{bucket}/{name}") from error


__all__ = ["GcsObjects", "GcsRecords", "NotFound", "Objects", "PreconditionFailed", "Record", "RecordStore", "StoredObject"]
