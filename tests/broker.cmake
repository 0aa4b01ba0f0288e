# broker/: the directory of nodes and the failover decisions (pure modules,
# driven by a fake clock), and the state file.
wc_add_test(test_directory 60 SOURCES test_directory.c LIBS wc_broker)
wc_add_test(test_failover 60 SOURCES test_failover.c LIBS wc_broker)
wc_add_test(test_broker_state 60 SOURCES test_broker_state.c LIBS wc_broker)
# The broker as nodes and clients see it (raw peers): bad registrations,
# bad input, one primary, memory bounds, failover and switchover with fake
# nodes (raw DEALERs that beat what the test tells them).
foreach(t register garbage primary memory failover switchover)
    wc_add_cluster_test(test_broker_${t} 300 test_broker_${t}.c broker_peer.c)
endforeach()
# The status page (--http-port): the JSON writer, the lag history, and
# /api/topology read with a bare HTTP GET.
wc_add_cluster_test(test_statuspage_json 120 test_statuspage_json.c broker_peer.c
                    http_get.c json_value.c)
target_link_libraries(test_statuspage_json PRIVATE wc_broker)
