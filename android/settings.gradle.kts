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
    }
}

rootProject.name = "alcove-android"
