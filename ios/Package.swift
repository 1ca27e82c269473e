// swift-tools-version:5.9
// Alcove for iOS: the Rust core as a static XCFramework (built on a Mac by
// build-xcframework.sh, which also writes the generated bindings into
// Sources/Alcove/Generated) and a thin Swift layer over it.
import PackageDescription

let package = Package(
    name: "Alcove",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Alcove", targets: ["Alcove"]),
    ],
    targets: [
        // Holds libalcove_ffi.a per platform plus alcove_ffiFFI.h and its
        // module map (the C module the generated Swift imports).
        .binaryTarget(name: "AlcoveFFI", path: "AlcoveFFI.xcframework"),
        .target(
            name: "Alcove",
            dependencies: ["AlcoveFFI"],
            path: "Sources/Alcove",
            linkerSettings: [.linkedFramework("Security"), .linkedFramework("SystemConfiguration")]
        ),
    ]
)
