/*  certs.c - CURVE certificates on disk (see certs.h).

    zcert_load reads both halves of a pair when given the public file's
    name and the `_secret` one exists beside it, and only the secret one's
    when given that; so a certificate "holds a secret" when the secret key
    it reports is not all zeros.
*/
#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "certs.h"
#include "walcast.h"

bool
wc_certs_is_key (const char *key, size_t len)
{
    static const char z85 [] = "0123456789abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (len != 40)
        return false;
    for (size_t i = 0; i < len; i++)
        if (key [i] == '\0' || !strchr (z85, key [i]))
            return false;
    return true;
}

//  All-zero keys are what zcert reports for a half it did not find.
static bool
s_zero (const byte *key)
{
    for (int i = 0; i < 32; i++)
        if (key [i])
            return false;
    return true;
}

//  Does the file at path look like a certificate: a `public-key = "KEY"`
//  line (40 characters of Z85) among its first 64 KiB of text? zconfig
//  prints its complaints about a file that is not ZPL on stdout, where a
//  program's data goes, so a file that is no certificate at all (the
//  usual mistake: the wrong path) must not reach zcert_load.
static bool
s_looks_like_cert (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    char line [512];
    bool found = false;
    long read = 0;
    while (!found && read < 65536 && fgets (line, sizeof line, file)) {
        read += (long) strlen (line);
        const char *at = line + strspn (line, " \t");
        if (strncmp (at, "public-key", 10) != 0)
            continue;
        at += 10;
        at += strspn (at, " \t");
        if (*at++ != '=')
            continue;
        at += strspn (at, " \t");
        if (*at++ != '"')
            continue;
        found = wc_certs_is_key (at, strcspn (at, "\"")) && at [40] == '"';
    }
    fclose (file);
    return found;
}

/*  0 when this process can read path, else the errno that says why not
    (a key pair made by root and a service run as its own user: EACCES). */
static int
s_unreadable (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return errno ? errno : EIO;
    fclose (file);
    return 0;
}

int
wc_certs_load (const char *path, bool need_secret, wc_certs_keys_t *keys,
               char *why, size_t why_size)
{
    memset (keys, 0, sizeof *keys);
    struct stat st;
    if (stat (path, &st) != 0) {
        snprintf (why, why_size, "cannot read the certificate %s: %s", path,
                  strerror (errno));
        return WALCAST_EINVAL;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (why, why_size, "cannot read the certificate %s: not a regular file",
                  path);
        return WALCAST_EINVAL;
    }
    int err = s_unreadable (path);
    if (err) {
        snprintf (why, why_size, "cannot read the certificate %s: %s (the process "
                  "runs as uid %d: check the file's owner and mode)", path,
                  strerror (err), (int) getuid ());
        return WALCAST_EINVAL;
    }
    //  zcert_load also reads PATH_secret when it exists, and falls back to
    //  PATH alone when it cannot: a public certificate whose secret beside
    //  it is not ours to read is the public certificate
    char secret [PATH_MAX];
    bool pair = snprintf (secret, sizeof secret, "%s_secret", path) < (int) sizeof secret
             && stat (secret, &st) == 0;
    if (pair && (err = s_unreadable (secret)) != 0) {
        if (need_secret) {
            snprintf (why, why_size, "cannot read the certificate %s: %s (the process "
                      "runs as uid %d: check the file's owner and mode)", secret,
                      strerror (err), (int) getuid ());
            return WALCAST_EINVAL;
        }
        pair = false;
    }
    if (pair && !s_looks_like_cert (secret)) {
        snprintf (why, why_size, "%s is not a CURVE certificate (make one with "
                  "`walcast keygen NAME`)", secret);
        return WALCAST_EINVAL;
    }
    zcert_t *cert = s_looks_like_cert (path) ? zcert_load (path) : NULL;
    if (!cert || s_zero (zcert_public_key (cert))) {
        snprintf (why, why_size, "%s is not a CURVE certificate (make one with "
                  "`walcast keygen NAME`)", path);
        zcert_destroy (&cert);
        return WALCAST_EINVAL;
    }
    if (need_secret && s_zero (zcert_secret_key (cert))) {
        snprintf (why, why_size, "%s holds no secret key: give the NAME_secret file "
                  "that `walcast keygen NAME` wrote", path);
        zcert_destroy (&cert);
        return WALCAST_EINVAL;
    }
    snprintf (keys->public_key, sizeof keys->public_key, "%s", zcert_public_txt (cert));
    if (!s_zero (zcert_secret_key (cert)))
        snprintf (keys->secret_key, sizeof keys->secret_key, "%s",
                  zcert_secret_txt (cert));
    zcert_destroy (&cert);
    return 0;
}

int
wc_certs_generate (const char *path, char *why, size_t why_size)
{
    char secret [PATH_MAX];
    if (snprintf (secret, sizeof secret, "%s_secret", path) >= (int) sizeof secret) {
        snprintf (why, why_size, "the name %s is too long", path);
        return WALCAST_EINVAL;
    }
    struct stat st;                     /* lstat: a link to nowhere exists too */
    if (lstat (path, &st) == 0 || lstat (secret, &st) == 0) {
        snprintf (why, why_size, "%s or %s exists already; remove it or pick another "
                  "name", path, secret);
        return WALCAST_EINVAL;
    }
    zcert_t *cert = zcert_new ();
    if (!cert) {
        snprintf (why, why_size, "cannot make a key pair (libzmq without CURVE?)");
        return WALCAST_EIO;
    }
    zcert_set_meta (cert, "created-by", "walcast keygen");
    mode_t mask = umask (077);          /* the secret is never readable by others */
    int rc = zcert_save (cert, path);
    umask (mask);
    if (rc == 0)
        chmod (path, 0644);             /* the public one may be */
    zcert_destroy (&cert);
    if (rc != 0) {
        snprintf (why, why_size, "cannot write %s and %s: %s", path, secret,
                  strerror (errno));
        return WALCAST_EIO;
    }
    return 0;
}

int
wc_certs_client (void *sock, const wc_certs_keys_t *keys, const char *server_key)
{
    if (zmq_setsockopt (sock, ZMQ_CURVE_SERVERKEY, server_key, 40)
    ||  zmq_setsockopt (sock, ZMQ_CURVE_PUBLICKEY, keys->public_key, 40)
    ||  zmq_setsockopt (sock, ZMQ_CURVE_SECRETKEY, keys->secret_key, 40))
        return -1;
    return 0;
}
