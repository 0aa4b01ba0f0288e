# protocol/: the codec of every message and WAL entry.
wc_add_test(test_codec 60 SOURCES test_codec.c LIBS wc_protocol)
# The fast reader of canonical entries agrees with the codec.
wc_add_test(test_scan 60 SOURCES test_scan.c LIBS wc_protocol)
# The rules of docs/PROTOCOL.md that an outside client tripped on, checked
# against real nodes on the wire (FETCH budget, digest text, lag_ms, the
# staleness floor, ROUTER frames).
wc_add_cluster_test(test_protocol_wire 180 test_protocol_wire.c)
# runtime/metrics: the Prometheus text format, exactly.
wc_add_test(test_metrics 60 SOURCES test_metrics.c LIBS wc_runtime)
