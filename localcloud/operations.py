"""Long-running operations shared by every fake (one `google.longrunning.Operations` service, as a client sees)."""
from __future__ import annotations

import threading
import uuid
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from localcloud.grpc_kit import Abort, service_handler
from localcloud.scenario import Scenario


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    raw = type(message).pb(message) if hasattr(type(message), "pb") else message
    packed.Pack(raw)
    return packed


class OperationStore:
    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._lock = threading.Lock()
        self._operations: dict[str, operations_pb2.Operation] = {}

    def start(self, prefix: str, metadata: Any) -> operations_pb2.Operation:
        """Records a new, not yet done operation named `<prefix>/<uuid>` and returns it."""
        operation = operations_pb2.Operation(name=f"{prefix}/{uuid.uuid4()}", done=False)
        operation.metadata.CopyFrom(_pack(metadata))
        with self._lock:
            self._operations[operation.name] = operation
            return operations_pb2.Operation.FromString(operation.SerializeToString())

    def update_metadata(self, name: str, metadata: Any) -> None:
        with self._lock:
            self._operations[name].metadata.CopyFrom(_pack(metadata))

    def finish(self, name: str, response: Any | None = None, error: tuple[grpc.StatusCode, str] | None = None) -> None:
        with self._lock:
            operation = self._operations[name]
            operation.done = True
            if error is not None:
                code, message = error
                operation.error.CopyFrom(status_pb2.Status(code=code.value[0], message=message))
            elif response is not None:
                operation.response.CopyFrom(_pack(response))

    def get(self, name: str) -> operations_pb2.Operation:
        with self._lock:
            operation = self._operations.get(name)
            if operation is None:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"operation {name} not found")
            return operations_pb2.Operation.FromString(operation.SerializeToString())

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        def get_operation(request: operations_pb2.GetOperationRequest) -> operations_pb2.Operation:
            return self.get(request.name)

        def delete_operation(request: operations_pb2.DeleteOperationRequest):
            from google.protobuf import empty_pb2

            with self._lock:
                self._operations.pop(request.name, None)
            return empty_pb2.Empty()

        from google.protobuf import empty_pb2

        return [
            service_handler(
                self._scenario,
                "google.longrunning.Operations",
                {
                    "GetOperation": (get_operation, operations_pb2.GetOperationRequest, operations_pb2.Operation),
                    "DeleteOperation": (delete_operation, operations_pb2.DeleteOperationRequest, empty_pb2.Empty),
                },
            )
        ]
