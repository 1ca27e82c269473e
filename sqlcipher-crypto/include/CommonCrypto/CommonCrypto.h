/*
 * Alcove: SQLCipher's crypto provider over RustCrypto.
 *
 * SQLCipher 4.6 chooses its crypto provider at compile time and has no
 * hook for a custom one. The workspace builds it with
 * -DSQLCIPHER_CRYPTO_CC (see .cargo/config.toml), and this directory is on
 * the C include path ahead of the system's, so SQLCipher's CommonCrypto
 * provider compiles against the few declarations below instead of Apple's
 * framework. Each one forwards to a function the Rust crate
 * `alcove-sqlcipher-crypto` hands over once, at start-up
 * (`alcove_sqlcipher_crypto::install`): AES-256-CBC, HMAC-SHA1/256/512,
 * PBKDF2 and the OS random source, from the RustCrypto crates libsignal
 * already links. No cryptography is written here: only argument passing.
 *
 * Until `install` has run every call fails, so a database can neither be
 * opened nor written without the real primitives (it never falls back to
 * plaintext).
 *
 * libsqlite3-sys does not watch this directory: after changing anything
 * here, bump ALCOVE_SQLCIPHER_CRYPTO_HEADERS in .cargo/config.toml.
 *
 * This header is included exactly once, by SQLCipher's amalgamation, so its
 * one global and one exported function are defined here.
 */
#ifndef ALCOVE_SQLCIPHER_COMMONCRYPTO_H
#define ALCOVE_SQLCIPHER_COMMONCRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* What Rust provides. Every function returns 0 on success. */
typedef struct alcove_sqlcipher_crypto_fns {
  /* algorithm: 1 = SHA-1, 2 = SHA-256, 3 = SHA-512 */
  int (*hmac)(int algorithm, const void *key, size_t key_len,
              const void *in1, size_t in1_len, const void *in2, size_t in2_len,
              void *out, size_t out_len);
  int (*pbkdf2)(int algorithm, const void *pass, size_t pass_len,
                const void *salt, size_t salt_len, uint32_t rounds,
                void *out, size_t out_len);
  /* AES-256-CBC without padding; len is a multiple of 16 */
  int (*aes256_cbc)(int encrypt, const void *key, size_t key_len,
                    const void *iv, const void *in, size_t len, void *out);
  int (*random)(void *out, size_t len);
} alcove_sqlcipher_crypto_fns;

static const alcove_sqlcipher_crypto_fns *alcove_sqlcipher_crypto = 0;

/* Called once by Rust before the first database opens. */
void alcove_sqlcipher_crypto_install(const alcove_sqlcipher_crypto_fns *fns);
void alcove_sqlcipher_crypto_install(const alcove_sqlcipher_crypto_fns *fns) {
  __atomic_store_n(&alcove_sqlcipher_crypto, fns, __ATOMIC_RELEASE);
}

static const alcove_sqlcipher_crypto_fns *alcove_sqlcipher_crypto_get(void) {
  return __atomic_load_n(&alcove_sqlcipher_crypto, __ATOMIC_ACQUIRE);
}

/* --- the CommonCrypto names SQLCipher's provider uses --- */

typedef int32_t CCCryptorStatus;
typedef uint32_t CCOperation;
typedef uint32_t CCAlgorithm;
typedef uint32_t CCOptions;
typedef uint32_t CCHmacAlgorithm;
typedef uint32_t CCPBKDFAlgorithm;
typedef uint32_t CCPseudoRandomAlgorithm;

enum { kCCSuccess = 0, kCCParamError = -4300, kCCUnimplemented = -4305 };
enum { kCCEncrypt = 0, kCCDecrypt = 1 };
enum { kCCAlgorithmAES128 = 0 };
enum { kCCKeySizeAES256 = 32 };
enum { kCCBlockSizeAES128 = 16 };
enum { kCCHmacAlgSHA1 = 1, kCCHmacAlgSHA256 = 2, kCCHmacAlgSHA512 = 3 };
enum { kCCPBKDF2 = 2 };
enum { kCCPRFHmacAlgSHA1 = 1, kCCPRFHmacAlgSHA256 = 2, kCCPRFHmacAlgSHA512 = 3 };

#define CC_SHA1_DIGEST_LENGTH 20
#define CC_SHA256_DIGEST_LENGTH 32
#define CC_SHA512_DIGEST_LENGTH 64

/* SQLCipher calls Init, at most two Updates and Final within one function,
   so the context only remembers where the inputs are. */
typedef struct {
  CCHmacAlgorithm algorithm;
  const void *key;
  size_t key_len;
  const void *in[2];
  size_t in_len[2];
  int parts;
} CCHmacContext;

static size_t alcove_cc_hmac_len(CCHmacAlgorithm algorithm) {
  switch (algorithm) {
    case kCCHmacAlgSHA1: return CC_SHA1_DIGEST_LENGTH;
    case kCCHmacAlgSHA256: return CC_SHA256_DIGEST_LENGTH;
    case kCCHmacAlgSHA512: return CC_SHA512_DIGEST_LENGTH;
    default: return 0;
  }
}

static void CCHmacInit(CCHmacContext *c, CCHmacAlgorithm algorithm, const void *key,
                       size_t key_len) {
  c->algorithm = algorithm;
  c->key = key;
  c->key_len = key_len;
  c->parts = 0;
}

static void CCHmacUpdate(CCHmacContext *c, const void *data, size_t len) {
  if (c->parts < 2) {
    c->in[c->parts] = data;
    c->in_len[c->parts] = len;
  }
  /* A third part cannot be remembered: Final then refuses. */
  c->parts++;
}

/* CommonCrypto's Final cannot fail. On any failure the output is filled
   with a value no page carries, so the page's check fails closed. */
static void CCHmacFinal(CCHmacContext *c, void *out) {
  const alcove_sqlcipher_crypto_fns *f = alcove_sqlcipher_crypto_get();
  size_t len = alcove_cc_hmac_len(c->algorithm);
  int ok = f != 0 && len != 0 && c->parts >= 1 && c->parts <= 2 &&
           f->hmac((int)c->algorithm, c->key, c->key_len, c->in[0], c->in_len[0],
                   c->parts == 2 ? c->in[1] : 0, c->parts == 2 ? c->in_len[1] : 0,
                   out, len) == 0;
  if (!ok && len != 0) {
    size_t i;
    for (i = 0; i < len; i++) ((unsigned char *)out)[i] = (unsigned char)(0xA5 ^ i);
  }
}

static CCCryptorStatus CCKeyDerivationPBKDF(CCPBKDFAlgorithm algorithm, const char *pass,
                                            size_t pass_len, const uint8_t *salt,
                                            size_t salt_len, CCPseudoRandomAlgorithm prf,
                                            unsigned rounds, uint8_t *derived,
                                            size_t derived_len) {
  const alcove_sqlcipher_crypto_fns *f = alcove_sqlcipher_crypto_get();
  if (f == 0 || algorithm != kCCPBKDF2) return kCCParamError;
  return f->pbkdf2((int)prf, pass, pass_len, salt, salt_len, rounds, derived,
                   derived_len) == 0
             ? kCCSuccess
             : kCCParamError;
}

struct alcove_cc_cryptor {
  CCOperation op;
  const void *key;
  size_t key_len;
  const void *iv;
};
typedef struct alcove_cc_cryptor *CCCryptorRef;

/* One cryptor per thread, never allocated: SQLCipher's provider creates,
   uses and releases it within one call, without nesting, for every page
   it reads or writes, and an allocation per page (and its leak on an
   error path that returns before Release) is what this avoids. */
static _Thread_local struct alcove_cc_cryptor alcove_cc_cryptor_slot;

static CCCryptorStatus CCCryptorCreate(CCOperation op, CCAlgorithm alg, CCOptions options,
                                       const void *key, size_t key_len, const void *iv,
                                       CCCryptorRef *out) {
  struct alcove_cc_cryptor *c = &alcove_cc_cryptor_slot;
  if (alcove_sqlcipher_crypto_get() == 0 || alg != kCCAlgorithmAES128 || options != 0 ||
      key_len != kCCKeySizeAES256 || iv == 0 || (op != kCCEncrypt && op != kCCDecrypt))
    return kCCParamError;
  c->op = op;
  c->key = key;
  c->key_len = key_len;
  c->iv = iv;
  *out = c;
  return kCCSuccess;
}

/* SQLCipher hands the whole page to one Update (its length a multiple of
   the block size), so the work happens there and Final adds nothing. */
static CCCryptorStatus CCCryptorUpdate(CCCryptorRef c, const void *in, size_t in_len, void *out,
                                       size_t out_avail, size_t *moved) {
  const alcove_sqlcipher_crypto_fns *f = alcove_sqlcipher_crypto_get();
  *moved = 0;
  if (f == 0 || out_avail < in_len || in_len % kCCBlockSizeAES128 != 0) return kCCParamError;
  if (f->aes256_cbc(c->op == kCCEncrypt, c->key, c->key_len, c->iv, in, in_len, out) != 0)
    return kCCParamError;
  *moved = in_len;
  return kCCSuccess;
}

static CCCryptorStatus CCCryptorFinal(CCCryptorRef c, void *out, size_t out_avail,
                                      size_t *moved) {
  (void)c;
  (void)out;
  (void)out_avail;
  *moved = 0;
  return kCCSuccess;
}

static CCCryptorStatus CCCryptorRelease(CCCryptorRef c) {
  c->key = 0;
  c->iv = 0;
  return kCCSuccess;
}

#endif
