/*  certs.h - CURVE certificates on disk, and a socket's CURVE options.

    walcast keeps keys in czmq's certificate format (zcert): `NAME` holds
    the public key, `NAME_secret` the public and the secret key, each as
    a small text file with the keys in Z85 (40 characters). `walcast keygen`
    writes such a pair; a server takes its secret certificate
    (--curve-cert) and a folder of public ones (--curve-trust, see curve.h);
    a client takes its secret certificate and the server's public key.

    This module is what the client library and the servers share: loading
    a certificate's keys, and setting the CURVE options of a libzmq socket
    as a client of a server whose public key it knows. It uses czmq's zcert
    to read and write the files, so the format is czmq's exactly.
*/
#ifndef WC_CERTS_H_INCLUDED
#define WC_CERTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  A key pair in Z85 (the secret is empty for a public certificate). */
typedef struct {
    char public_key [41];
    char secret_key [41];
} wc_certs_keys_t;

/*  Read the certificate at path. With need_secret, it must hold a
    secret key (a NAME_secret file). 0, or WALCAST_EINVAL with why
    naming the file and the reason. */
int wc_certs_load (const char *path, bool need_secret, wc_certs_keys_t *keys,
                   char *why, size_t why_size);

/*  Write a new key pair as path (public) and path_secret. 0, or
    WALCAST_EINVAL / WALCAST_EIO with why set. Refuses to overwrite. */
int wc_certs_generate (const char *path, char *why, size_t why_size);

/*  Is key 40 characters of Z85? */
bool wc_certs_is_key (const char *key, size_t len);

/*  Make a libzmq socket (before it connects) a CURVE client of the
    server whose public key is server_key, with our keys. 0, or -1 with
    errno set by libzmq. */
int wc_certs_client (void *sock, const wc_certs_keys_t *keys, const char *server_key);

#endif
