# node/: replication on real nodes (primary, replicas, restarts, crashes,
# hostile peers) and the node's side of routed reads.
foreach(t converge restart latejoin sigstop crash notprimary garbage streamlimit
        foreign)
    wc_add_cluster_test(test_cluster_${t} 300 test_cluster_${t}.c)
endforeach()
# (a scripted upstream stands in for another cluster's node)
target_sources(test_cluster_foreign PRIVATE upstream.c)
# How a replica paces its ACKs, against a scripted upstream.
wc_add_cluster_test(test_cluster_ackpace 120 test_cluster_ackpace.c upstream.c)
wc_add_cluster_test(test_node_reads 120 test_node_reads.c)
wc_add_cluster_test(test_node_memory 300 test_node_memory.c)
# (its slow-disk test makes its client socket with libwalcast's own code)
target_include_directories(test_node_memory PRIVATE ${PROJECT_SOURCE_DIR}/client
                           ${PROJECT_SOURCE_DIR}/runtime)
# Alone: it pipelines 512 MiB of writes several times and measures the
# node's peak memory, which a test beside it would blur (and slow).
set_property(TEST test_node_memory PROPERTY RUN_SERIAL TRUE)
wc_add_cluster_test(test_node_errors 120 test_node_errors.c)
wc_add_cluster_test(test_node_acks 120 test_node_acks.c)
wc_add_cluster_test(test_node_storage 300 test_node_storage.c)
target_link_libraries(test_node_storage PRIVATE wc_storage)
wc_add_cluster_test(test_history 300 test_history.c)
target_link_libraries(test_history PRIVATE wc_storage)
wc_add_cluster_test(test_cluster_failover 600 test_cluster_failover.c)
wc_add_cluster_test(test_node_directives 120 test_node_directives.c)
wc_add_cluster_test(test_cluster_curve 300 test_cluster_curve.c http_get.c)

# systemd readiness (Type=notify), issue 10.
wc_add_cluster_test(test_notify 120 test_notify.c)
target_link_libraries(test_notify PRIVATE wc_runtime)
add_test(NAME check_units COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_units.sh
         ${PROJECT_BINARY_DIR}
         ${PROJECT_SOURCE_DIR}/examples/systemd/walcast-node@.service
         ${PROJECT_SOURCE_DIR}/examples/systemd/walcast-broker.service)
set_tests_properties(check_units PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77)
# A replica's per-entry replication lag, the histogram /metrics shows.
wc_add_test(test_applylag 60 SOURCES test_applylag.c LIBS wc_node)
# When a replica's ACK goes out: promptly when a write waits, relaxed else.
wc_add_test(test_acker 60 SOURCES test_acker.c LIBS wc_node)
# /metrics of nodes and the broker, scraped over plain HTTP (issue 10).
wc_add_cluster_test(test_metrics_scrape 180 test_metrics_scrape.c broker_peer.c)
