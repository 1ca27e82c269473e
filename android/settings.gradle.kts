// Gradle build of the Alcove Android library for Android Studio users.
// (The Maven builds, pom.xml and glue/pom.xml, are what CI runs on the JVM.)
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
        // rustls-platform-verifier's Kotlin part (Android's TrustManager
        // called from the native library), published by the rustls project.
        maven {
            url = uri("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
            content { includeGroup("rustls") }
        }
    }
}

rootProject.name = "alcove-android"
