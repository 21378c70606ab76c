"""The one way fakes declare gRPC methods: typed requests in, typed responses out, faults and latency applied."""
from __future__ import annotations

from typing import Any, Callable

import grpc

from localcloud.scenario import Scenario


class Abort(Exception):
    """Raised inside a fake handler to answer with a gRPC status, as the real API would."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def service_handler(
    scenario: Scenario,
    service: str,
    methods: dict[str, tuple[Callable[[Any], Any], Any, Any]],
) -> grpc.GenericRpcHandler:
    """`methods` maps a method name to (fn(request) -> response, request type, response type).

    Request and response types are proto-plus classes (`run_v2.GetServiceRequest`) or raw protobuf classes
    (`operations_pb2.GetOperationRequest`); both expose what the server needs.
    """
    handlers = {}
    for name, (fn, request_type, response_type) in methods.items():
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            _guarded(scenario, f"{service}/{name}", fn),
            request_deserializer=_deserializer(request_type),
            response_serializer=_serializer(response_type),
        )
    return grpc.method_handlers_generic_handler(service, handlers)


def _deserializer(message_type: Any) -> Callable[[bytes], Any]:
    if hasattr(message_type, "deserialize"):
        return message_type.deserialize
    return message_type.FromString


def _serializer(message_type: Any) -> Callable[[Any], bytes]:
    if hasattr(message_type, "serialize"):
        return message_type.serialize
    return lambda message: message.SerializeToString()


def _guarded(scenario: Scenario, method: str, fn: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        scenario.sleep("rpc")
        code = scenario.take_fault(method)
        if code is not None:
            context.abort(grpc.StatusCode[code], f"injected fault on {method}")
        try:
            response = fn(request)
        except Abort as abort:
            context.abort(abort.code, abort.message)
        code = scenario.take_fault_after_effect(method)
        if code is not None:
            context.abort(grpc.StatusCode[code], f"injected fault on {method} after its effect")
        return response

    return handle
