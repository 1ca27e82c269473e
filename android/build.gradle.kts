// The Alcove Android library (AAR): the JVM layer (src/main/kotlin), the
// Android glue (glue/src/main/kotlin), the UniFFI Kotlin bindings and the
// native library for each ABI, both built from the Rust workspace by the
// tasks below (cargo-ndk, uniffi-bindgen). Flavours: "fcm" adds the Firebase
// service (glue/src/fcm); "foss" is UnifiedPush only, with no Google code.
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
}

val repoRoot: File = rootDir.parentFile
val jniLibsDir = layout.buildDirectory.dir("rust/jniLibs")
val bindingsDir = layout.buildDirectory.dir("generated/uniffi")
// Android ABIs built; cargo-ndk maps each to its Rust target.
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
val minSdkVersion = 26

android {
    namespace = "org.alcove.android"
    compileSdk = 35

    defaultConfig {
        minSdk = minSdkVersion
        consumerProguardFiles("glue/consumer-rules.pro")
        ndk { abiFilters += abis }
    }

    flavorDimensions += "push"
    productFlavors {
        create("fcm") { dimension = "push" }
        create("foss") { dimension = "push" }
    }

    sourceSets {
        getByName("main") {
            manifest.srcFile("glue/src/main/AndroidManifest.xml")
            kotlin.srcDirs("src/main/kotlin", "glue/src/main/kotlin", bindingsDir.get().asFile)
            jniLibs.srcDirs(jniLibsDir.get().asFile)
        }
        getByName("fcm") {
            manifest.srcFile("glue/src/fcm/AndroidManifest.xml")
            kotlin.srcDirs("glue/src/fcm/kotlin")
        }
        // src/test holds the JUnit 5 suite for the host JVM (Maven, run-tests.sh);
        // glue/src/test the Robolectric suite (glue/pom.xml).
        getByName("test") { kotlin.setSrcDirs(emptyList<String>()) }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildTypes {
        release { isMinifyEnabled = false }
    }
}

kotlin {
    jvmToolchain(17)
}

// The verifier's Kotlin part must be the version the native library was
// built with: read it from the workspace's Cargo.lock.
val rustlsVerifierVersion: String = run {
    val lines = File(repoRoot, "Cargo.lock").readLines()
    val at = lines.indexOfFirst { it.trim() == "name = \"rustls-platform-verifier-android\"" }
    check(at >= 0) { "rustls-platform-verifier-android not in Cargo.lock" }
    lines.drop(at + 1).first { it.trim().startsWith("version = ") }.substringAfter('"').substringBefore('"')
}

dependencies {
    // Android's trust store for the relay's certificate (AlcoveAndroid.init).
    implementation("rustls:rustls-platform-verifier:$rustlsVerifierVersion")
    // The AAR flavour of JNA carries its own libjnidispatch.so per ABI.
    implementation("net.java.dev.jna:jna:5.15.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    "fcmImplementation"("com.google.firebase:firebase-messaging:24.1.0")
}

// Needs the Android NDK (ANDROID_NDK_HOME) and `cargo install cargo-ndk`,
// plus `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`.
val cargoNdk by tasks.registering(Exec::class) {
    group = "rust"
    description = "Builds libalcove_ffi.so for each ABI with cargo-ndk"
    workingDir = repoRoot
    val out = jniLibsDir.get().asFile
    commandLine(
        listOf("cargo", "ndk", "--platform", minSdkVersion.toString()) +
            abis.flatMap { listOf("-t", it) } +
            // The shipping profile (Cargo.toml): small, panics still unwind.
            listOf("-o", out.path, "build", "--profile", "ffi-release", "--locked", "-p", "alcove-ffi"),
    )
    inputs.files(fileTree(repoRoot) { include("Cargo.lock", "*/Cargo.toml", "*/src/**", "proto/schemas/**") })
    outputs.dir(out)
}

// Library mode reads the interface from the built .so (any ABI will do).
val uniffiBindings by tasks.registering(Exec::class) {
    group = "rust"
    description = "Generates the Kotlin bindings (package uniffi.alcove_ffi) from the built library"
    dependsOn(cargoNdk)
    workingDir = repoRoot
    val lib = jniLibsDir.get().file("arm64-v8a/libalcove_ffi.so").asFile
    val out = bindingsDir.get().asFile
    commandLine(
        "cargo", "run", "--locked", "-q", "-p", "uniffi-bindgen", "--",
        "generate", "--library", lib.path, "--language", "kotlin", "--out-dir", out.path,
    )
    inputs.file(lib)
    outputs.dir(out)
}

tasks.named("preBuild") { dependsOn(uniffiBindings) }
