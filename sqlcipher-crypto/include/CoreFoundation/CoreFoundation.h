/* Alcove: SQLCipher's CommonCrypto provider reads Security.framework's
   version through CoreFoundation on Apple targets (`#if TARGET_OS_MAC`).
   The provider here is Rust's (see CommonCrypto/CommonCrypto.h), so these
   stand-ins report no bundle and the version reads "unknown" everywhere,
   and no Apple framework is needed to link. */
#ifndef ALCOVE_SQLCIPHER_COREFOUNDATION_H
#define ALCOVE_SQLCIPHER_COREFOUNDATION_H

typedef const void *CFTypeRef;
typedef const void *CFStringRef;
typedef const void *CFBundleRef;
typedef unsigned int CFStringEncoding;
#define kCFStringEncodingUTF8 ((CFStringEncoding)0x08000100)
#define CFSTR(s) ((CFStringRef)(s))

static CFBundleRef CFBundleGetBundleWithIdentifier(CFStringRef id) {
  (void)id;
  return 0;
}
static CFTypeRef CFBundleGetValueForInfoDictionaryKey(CFBundleRef b, CFStringRef k) {
  (void)b;
  (void)k;
  return 0;
}
static const char *CFStringGetCStringPtr(CFTypeRef s, CFStringEncoding e) {
  (void)s;
  (void)e;
  return "unknown";
}

#endif
