# runtime/: what every process shares. Configuration files and flags from
# one table, and the log line format.
wc_add_test(test_config 60 SOURCES test_config.c LIBS wc_runtime)
# The binaries with --config, --check-config and SIGHUP.
wc_add_cluster_test(test_config_cli 180 test_config_cli.c)
target_compile_definitions(test_config_cli PRIVATE
    WALCAST_EXAMPLES="${PROJECT_SOURCE_DIR}/examples")
# CURVE on a server: nothing held per PUB socket rebuild.
wc_add_test(test_curve 60 SOURCES test_curve.c ports.c LIBS wc_runtime)
# Replies on a ROUTER: a burst to a peer that reads them all is never refused.
wc_add_test(test_request 60 SOURCES test_request.c LIBS wc_runtime)
# The HTTP server of /metrics and the status page: only published paths.
wc_add_test(test_httpd 60 SOURCES test_httpd.c http_get.c ports.c LIBS wc_runtime)
