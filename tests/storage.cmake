# storage/: the file layer, the directory lock, the WAL, the key-value state,
# the epoch history and the engine over them.
wc_add_test(test_vfs   60 SOURCES test_vfs.c LIBS wc_storage)
wc_add_test(test_lock  60 SOURCES test_lock.c LIBS wc_storage)
wc_add_test(test_wal   120 SOURCES test_wal.c wal_util.c LIBS wc_storage)
wc_add_test(test_store 60 SOURCES test_store.c LIBS wc_storage)
wc_add_test(test_slab  60 SOURCES test_slab.c LIBS wc_storage)
wc_add_test(test_wal_flush 240 SOURCES test_wal_flush.c wal_util.c LIBS wc_storage)
wc_add_test(test_syncer 60 SOURCES test_syncer.c wal_util.c LIBS wc_storage)
wc_add_test(test_engine 120 SOURCES test_engine.c vfs_gate.c LIBS wc_storage)
wc_add_test(test_epochs 60 SOURCES test_epochs.c LIBS wc_storage)
wc_add_test(test_snapshot 120 SOURCES test_snapshot.c vfs_gate.c LIBS wc_storage)
wc_add_test(test_engine_epochs 120 SOURCES test_engine_epochs.c engine_util.c LIBS wc_storage)
wc_add_test(test_engine_snapshot 240 SOURCES test_engine_snapshot.c engine_util.c vfs_gate.c LIBS wc_storage)
