/* Alcove: SecRandomCopyBytes for SQLCipher's provider, from the OS random
   source through Rust (see CommonCrypto/CommonCrypto.h). */
#ifndef ALCOVE_SQLCIPHER_SECRANDOM_H
#define ALCOVE_SQLCIPHER_SECRANDOM_H

#include <CommonCrypto/CommonCrypto.h>

typedef const void *SecRandomRef;
#define kSecRandomDefault ((SecRandomRef)0)

static int SecRandomCopyBytes(SecRandomRef rnd, size_t count, void *bytes) {
  const alcove_sqlcipher_crypto_fns *f = alcove_sqlcipher_crypto_get();
  (void)rnd;
  if (f == 0) return kCCParamError;
  return f->random(bytes, count) == 0 ? kCCSuccess : kCCParamError;
}

#endif
