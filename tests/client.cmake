# client/: read routing, regions (behind latency proxies), the broker as
# clients see it, watch, and the three-region example.
wc_add_test(test_select 60 SOURCES test_select.c LIBS walcast_static)
target_include_directories(test_select PRIVATE ${PROJECT_SOURCE_DIR}/client
    ${PROJECT_SOURCE_DIR}/protocol ${PROJECT_SOURCE_DIR}/runtime)

foreach(t nearest session staleness cascade broker watch routing)
    wc_add_cluster_test(test_region_${t} 300 test_region_${t}.c)
endforeach()

add_test(NAME example_regions
         COMMAND walcast-with-ports 100 $<TARGET_FILE:regions> {PORT})
set_tests_properties(example_regions PROPERTIES TIMEOUT 120
    ENVIRONMENT "${WALCAST_TEST_ENV}")
