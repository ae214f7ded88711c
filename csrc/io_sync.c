/* io_sync.c - parallel fdatasync with a small pool of native helper threads.
 *
 * A call is a job: its items are claimed one at a time, under one mutex, by
 * the caller and by idle helpers; the caller waits until every item is done.
 * Helpers live until the process ends (fork resets the pool in the child,
 * which inherits no threads).
 */
#define _GNU_SOURCE
#include "dw_io.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

typedef struct dw_sync_job {
    const int *fds;
    int *errs;
    size_t n, next, done, failed;
    pthread_cond_t finished;
    struct dw_sync_job *link; /* jobs with unclaimed items */
} dw_sync_job;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work = PTHREAD_COND_INITIALIZER;
static dw_sync_job *g_jobs = NULL;
static size_t g_helpers = 0;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void dw_sync_reset_child(void)
{
    /* the child has only the thread that forked: no helpers, no jobs in flight */
    pthread_mutex_init(&g_lock, NULL);
    pthread_cond_init(&g_work, NULL);
    g_jobs = NULL;
    g_helpers = 0;
}

static void dw_sync_register_atfork(void)
{
    pthread_atfork(NULL, NULL, dw_sync_reset_child);
}

static int dw_flush_one(int fd)
{
    for (;;) {
        if (fdatasync(fd) == 0)
            return 0;
        if (errno != EINTR)
            return errno;
    }
}

/* Claim the next item of the first job with one left (lock held); NULL if none. */
static dw_sync_job *dw_claim(dw_sync_job *only, size_t *item)
{
    dw_sync_job **at = &g_jobs;
    while (*at != NULL && only != NULL && *at != only)
        at = &(*at)->link;
    dw_sync_job *job = *at;
    if (job == NULL)
        return NULL;
    *item = job->next++;
    if (job->next == job->n)
        *at = job->link; /* nothing left to claim: off the list */
    return job;
}

/* Run a claimed item (lock held on entry and exit, released meanwhile). */
static void dw_run(dw_sync_job *job, size_t item)
{
    pthread_mutex_unlock(&g_lock);
    int err = dw_flush_one(job->fds[item]);
    pthread_mutex_lock(&g_lock);
    job->errs[item] = err;
    job->failed += err != 0;
    if (++job->done == job->n)
        pthread_cond_signal(&job->finished);
}

static void *dw_helper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        size_t item;
        dw_sync_job *job = dw_claim(NULL, &item);
        if (job == NULL) {
            pthread_cond_wait(&g_work, &g_lock);
            continue;
        }
        dw_run(job, item);
    }
    return NULL;
}

/* Start helpers until there are `want` (lock held); stops at the first failure. */
static void dw_grow(size_t want)
{
    if (want > DW_SYNC_MAX_HELPERS)
        want = DW_SYNC_MAX_HELPERS;
    while (g_helpers < want) {
        pthread_t t;
        pthread_attr_t attr;
        if (pthread_attr_init(&attr) != 0)
            return;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        int rc = pthread_create(&t, &attr, dw_helper, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            return; /* the caller flushes what no helper takes */
        g_helpers++;
    }
}

size_t dw_fdatasync_many(const int *fds, int *errs, size_t n, int parallel)
{
    if (n < 2 || !parallel) {
        size_t failed = 0;
        for (size_t i = 0; i < n; i++) {
            errs[i] = dw_flush_one(fds[i]);
            failed += errs[i] != 0;
        }
        return failed;
    }
    pthread_once(&g_atfork_once, dw_sync_register_atfork);
    dw_sync_job job = {.fds = fds, .errs = errs, .n = n};
    pthread_cond_init(&job.finished, NULL);
    pthread_mutex_lock(&g_lock);
    dw_grow(n - 1);
    job.link = g_jobs;
    g_jobs = &job;
    if (n - 1 >= g_helpers)
        pthread_cond_broadcast(&g_work);
    else
        for (size_t i = 0; i + 1 < n; i++)
            pthread_cond_signal(&g_work);
    size_t item;
    while (dw_claim(&job, &item) != NULL)
        dw_run(&job, item);
    while (job.done < job.n)
        pthread_cond_wait(&job.finished, &g_lock);
    size_t failed = job.failed;
    pthread_mutex_unlock(&g_lock);
    pthread_cond_destroy(&job.finished);
    return failed;
}
