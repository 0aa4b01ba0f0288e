# protocol/: the codec of every message and WAL entry.
wc_add_test(test_codec 60 SOURCES test_codec.c LIBS wc_protocol)
