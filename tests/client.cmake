# client/: read routing, regions (behind latency proxies), the broker as
# clients see it, watch, and the three-region example.
wc_add_test(test_select 60 SOURCES test_select.c LIBS walcast_static)
target_include_directories(test_select PRIVATE ${PROJECT_SOURCE_DIR}/client
    ${PROJECT_SOURCE_DIR}/protocol ${PROJECT_SOURCE_DIR}/runtime)

# The watch on a sync write's connection (client/dropwatch.c), on loopback.
wc_add_test(test_dropwatch 60 SOURCES test_dropwatch.c LIBS walcast_static PkgConfig::ZMQ)
target_include_directories(test_dropwatch PRIVATE ${PROJECT_SOURCE_DIR}/client)

foreach(t nearest session staleness cascade broker watch routing)
    wc_add_cluster_test(test_region_${t} 300 test_region_${t}.c)
endforeach()

add_test(NAME example_regions
         COMMAND walcast-with-ports 100 $<TARGET_FILE:regions> {PORT})
set_tests_properties(example_regions PROPERTIES TIMEOUT 120
    ENVIRONMENT "${WALCAST_TEST_ENV}")

# Client tests against fakes (tests/fake.c) and real clusters: per-write
# outcomes, server selection, bad topology entries, a lossless watch.
add_library(wc_fake STATIC fake.c)
target_link_libraries(wc_fake PUBLIC wc_protocol PkgConfig::ZMQ)
foreach(t load select topology watch acks snapshot switchover failover)
    wc_add_cluster_test(test_client_${t} 300 test_client_${t}.c)
    target_link_libraries(test_client_${t} PRIVATE wc_fake)
endforeach()

# The same failover cases with no socket monitor: a sync write sees its
# connection drop through its PINGs alone (test_client_failover.c).
wc_add_cluster_test(test_client_failover_pings 120 test_client_failover.c)
target_link_libraries(test_client_failover_pings PRIVATE wc_fake)
target_compile_definitions(test_client_failover_pings PRIVATE WC_TEST_NO_MONITOR)

# CURVE on the client side: keygen, the --curve-* flags, EPERM, against
# fakes that are CURVE servers.
wc_add_cluster_test(test_client_curve 120 test_client_curve.c)
target_link_libraries(test_client_curve PRIVATE wc_fake PkgConfig::CZMQ)

# The CLI's command line: --help after a command, -- ending its options.
wc_add_cluster_test(test_client_cli 120 test_client_cli.c)

# walcast status --watch (issue 10).
wc_add_cluster_test(test_client_status_watch 120 test_client_status_watch.c)

# The examples build the way an application builds them: alone, with the
# public header and no flags of this project (no -D_GNU_SOURCE), as C11.
foreach(example walkthrough regions feed)
    add_test(NAME example_${example}_standalone
             COMMAND ${CMAKE_C_COMPILER} -std=c11 -Wall -Wextra -Werror -fsyntax-only
                     -I${PROJECT_SOURCE_DIR}/include
                     ${PROJECT_SOURCE_DIR}/examples/${example}.c)
    set_tests_properties(example_${example}_standalone PROPERTIES TIMEOUT 60)
endforeach()
