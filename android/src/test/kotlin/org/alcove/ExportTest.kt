package org.alcove

import ca.uhn.fhir.context.FhirContext
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport
import ca.uhn.fhir.validation.ResultSeverityEnum
import java.io.File
import kotlinx.coroutines.runBlocking
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator
import org.hl7.fhir.r4.model.Bundle
import org.hl7.fhir.r4.model.Communication
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.generateDatabaseKey
import uniffi.alcove_ffi.verifyExport

/**
 * Export for the clinical record through the real bindings, with the FHIR R4 Bundle checked by
 * HAPI FHIR's validator against the R4 base profiles.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ExportTest {
    private val relay = TestRelay()

    @AfterAll
    fun stopRelay() = relay.close()

    @Test
    fun theExportIsValidFhirAndItsManifestChecks() = runBlocking<Unit> {
        val key = generateDatabaseKey()
        val therapist = relay.enroll("xt", key)
        val client = relay.enroll("xc")
        val toT = client.conversationWith(therapist.accountId())
        client.sendText(toT, "Can we talk about Thursday? <b>not bold</b>")
        therapist.sync(5_000u)
        val toC = therapist.conversationWith(client.accountId())
        therapist.sendText(toC, "Yes, at 4.")

        val dir = File(relay.dir, "export")
        assertThrows(AlcoveException.WrongKey::class.java) {
            therapist.exportConversation(toC, null, null, dir.path, generateDatabaseKey())
        }
        val report = therapist.exportConversation(toC, null, null, dir.path, key)
        assertEquals(2u, report.messages)
        assertNull(verifyExport(dir.path))

        val ctx = FhirContext.forR4()
        val chain = ValidationSupportChain(
            DefaultProfileValidationSupport(ctx),
            InMemoryTerminologyServerValidationSupport(ctx),
            CommonCodeSystemsTerminologyService(ctx),
        )
        val validator = ctx.newValidator().registerValidatorModule(FhirInstanceValidator(chain))
        val json = File(dir, "bundle.fhir.json").readText()
        val result = validator.validateWithResult(json)
        val errors = result.messages.filter {
            it.severity == ResultSeverityEnum.ERROR || it.severity == ResultSeverityEnum.FATAL
        }
        assertTrue(errors.isEmpty(), errors.joinToString("\n") { "${it.locationString}: ${it.message}" })
        val bundle = ctx.newJsonParser().parseResource(Bundle::class.java, json)
        assertEquals(Bundle.BundleType.COLLECTION, bundle.type)
        val texts = bundle.entry.map { (it.resource as Communication).payloadFirstRep.contentStringType.value }
        assertEquals(listOf("Can we talk about Thursday? <b>not bold</b>", "Yes, at 4."), texts)

        // A changed transcript is caught and named.
        val html = File(dir, "transcript.html")
        html.writeText(html.readText().replace("Thursday", "Friday"))
        assertEquals("mismatch:transcript.html", verifyExport(dir.path))
    }
}
