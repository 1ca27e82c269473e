//! Android only: the JNI entry point that gives rustls-platform-verifier
//! the JVM and the app's Context, so the relay's certificate is checked by
//! Android's own trust store. The glue's `AlcoveAndroid.init(context)`
//! calls it once, before the first client is made; until then an unpinned
//! client refuses to be built (the verifier would panic at a handshake).

use jni::errors::ThrowRuntimeExAndDefault;
use jni::jni_mangle;
use jni::objects::{JClass, JObject};
use jni::EnvUnowned;

/// `org.alcove.android.AlcoveAndroid.nativeInit(Context)`. A failure is
/// thrown as a `RuntimeException`; a panic is caught by `with_env`.
#[jni_mangle("org.alcove.android.AlcoveAndroid")]
pub fn native_init<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    context: JObject<'caller>,
) {
    env.with_env(|env| -> jni::errors::Result<()> {
        rustls_platform_verifier::android::init_with_env(env, context)?;
        alcove_core::tls::android::verifier_initialised();
        Ok(())
    })
    .resolve::<ThrowRuntimeExAndDefault>()
}
