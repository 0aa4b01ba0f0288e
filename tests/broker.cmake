# broker/: the directory of nodes (a pure module, driven by a fake clock),
# and the state file.
wc_add_test(test_directory 60 SOURCES test_directory.c LIBS wc_broker)
wc_add_test(test_broker_state 60 SOURCES test_broker_state.c LIBS wc_broker)
# The broker as nodes and clients see it (raw peers): bad registrations,
# bad input, one primary, memory bounds.
foreach(t register garbage primary memory)
    wc_add_cluster_test(test_broker_${t} 300 test_broker_${t}.c broker_peer.c)
endforeach()
