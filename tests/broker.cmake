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
# The status page in headless Chromium (Debian's chromium package): a real
# cluster, a replica and then the primary killed, the page re-rendered
# until it shows both. Its last screenshot: build/tests/status-page.png.
find_program(WALCAST_CHROMIUM NAMES chromium chromium-browser)
if(NOT WALCAST_CHROMIUM)
    message(WARNING "chromium not found: test_statuspage_browser will fail; "
                    "install Debian's chromium package (build.sh test does)")
    set(WALCAST_CHROMIUM "")
endif()
wc_add_cluster_test(test_statuspage_browser 300 test_statuspage_browser.c)
# Alone: Chromium takes both cores while it starts, and a test beside it
# that times round trips (test_region_*) measured a 30 ms stall.
set_property(TEST test_statuspage_browser PROPERTY RUN_SERIAL TRUE)
set_property(TEST test_statuspage_browser APPEND PROPERTY ENVIRONMENT
    "WALCAST_CHROMIUM=${WALCAST_CHROMIUM}"
    "WALCAST_SCREENSHOT=${CMAKE_CURRENT_BINARY_DIR}/status-page.png")
