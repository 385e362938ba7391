"""xDS v3: the ADS client of the proxy, the Envoy-resource <-> config-model conversion, and
the ``mosn-py control-plane`` server. Only this package imports protobuf (Envoy types from
``xds-protos``); it produces the same config model as the YAML loader."""
