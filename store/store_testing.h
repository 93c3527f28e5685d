/*
 * store_testing.h - hooks for tests only; the server never includes this.
 */
#ifndef SLUICE_STORE_STORE_TESTING_H
#define SLUICE_STORE_STORE_TESTING_H

#include "store/store.h"

/* The next store_batch_commit fails with SL_ERR_IO as a failed fsync would: the batch is
 * aborted, nothing of it reaches the store, and every callback gets the error. */
void store_test_fail_next_commit(store_t *st);
/* The next store_batch_commit sees MDB_MAP_FULL from LMDB once: it must grow the map,
 * replay the batch and commit it, the callers noticing nothing. */
void store_test_map_full_next_commit(store_t *st);

#endif
