# broker/: the directory of nodes (a pure module, driven by a fake clock).
wc_add_test(test_directory 60 SOURCES test_directory.c LIBS wc_broker)
