"""DICOM de-identification: PS3.15 Annex E Basic Application Level Confidentiality Profile.

The profile (Table E.1-1) is kept below as data: one ``keyword action`` line per attribute.
Actions: D replace with a dummy value, Z replace with an empty value, X remove, K keep,
U replace a UID with a new one. The table's compound actions are resolved to one action:
Z/D, X/Z, X/Z/D -> Z (the attribute stays, empty, so type 2 attributes remain valid), except
Content Date/Time and Device Serial Number -> D, as enhanced multi-frame IODs (SEG, enhanced
CT/MR) require them as type 1;
X/D -> X; X/Z/U* (sequences of references) -> kept, with U applied to the UIDs inside.
No profile options are applied (no retention of dates, device, institution or descriptions),
so dates are emptied or removed: PET SUV can no longer be computed from anonymised files.

Besides the table: every private attribute, curve (50xx,xxxx), overlay data (60xx,3000) and
overlay comment (60xx,4000) is removed; UIDs are replaced through one mapping per run (a random
salt hashed with the old UID), so files of one study keep their links (series, frames of
reference, references inside sequences) and the file meta SOP Instance UID matches the data set.
Pixel data and geometry are not touched; files declaring BurnedInAnnotation YES are reported,
since text burnt into the pixels is not removed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from viewer.core.errors import CorruptFileError, EmptyInputError
from viewer.core.io.dicom_headers import iter_files, read_header
from viewer.core.io.seg import complete_uids
from viewer.core.progress import CancelToken, ProgressCallback, no_progress

log = logging.getLogger(__name__)

#: PS3.15 Table E.1-1, Basic Profile column, compound actions resolved as the module docstring says.
BASIC_PROFILE_TABLE = """
AccessionNumber Z
AcquisitionComments X
AcquisitionContextSequence X
AcquisitionDate Z
AcquisitionDateTime X
AcquisitionDeviceProcessingDescription X
AcquisitionProtocolDescription X
AcquisitionTime Z
ActualHumanPerformersSequence X
AdditionalPatientHistory X
AdmissionID X
AdmittingDate X
AdmittingDiagnosesCodeSequence X
AdmittingDiagnosesDescription X
AdmittingTime X
AffectedSOPInstanceUID X
Allergies X
AuthorObserverSequence X
BranchOfService X
CassetteID X
ClinicalTrialCoordinatingCenterName Z
ClinicalTrialProtocolEthicsCommitteeApprovalNumber Z
ClinicalTrialProtocolEthicsCommitteeName D
ClinicalTrialProtocolID D
ClinicalTrialProtocolName Z
ClinicalTrialSeriesDescription X
ClinicalTrialSeriesID X
ClinicalTrialSiteID Z
ClinicalTrialSiteName Z
ClinicalTrialSponsorName D
ClinicalTrialSubjectID Z
ClinicalTrialSubjectReadingID Z
ClinicalTrialTimePointDescription Z
ClinicalTrialTimePointID Z
CommentsOnThePerformedProcedureStep X
ConcatenationUID U
ConfidentialityConstraintOnPatientDataDescription X
ConsultingPhysicianIdentificationSequence X
ConsultingPhysicianName X
ContentCreatorIdentificationCodeSequence X
ContentCreatorName Z
ContentDate D
ContentSequence X
ContentTime D
ContextGroupExtensionCreatorUID U
ContrastBolusAgent Z
ContrastBolusStartTime X
ContrastBolusStopTime X
ContributionDescription X
CountryOfResidence X
CreatorVersionUID U
CurrentPatientLocation X
CurveDate X
CurveTime X
CustodialOrganizationSequence X
DataSetTrailingPadding X
DateOfLastCalibration X
DateOfSecondaryCapture X
DerivationDescription X
DetectorID X
DeviceSerialNumber D
DeviceUID U
DigitalSignatureUID X
DigitalSignaturesSequence X
DimensionOrganizationUID U
DischargeDiagnosisDescription X
DistributionAddress X
DistributionName X
DoseReferenceUID U
EndAcquisitionDateTime X
EthnicGroup X
ExpectedCompletionDateTime X
FailedSOPInstanceUIDList U
FiducialUID U
FillerOrderNumberImagingServiceRequest Z
FrameComments X
FrameOfReferenceUID U
GantryID X
GeneratorID X
HumanPerformerName X
HumanPerformerOrganization X
IconImageSequence X
IdentifyingComments X
ImageComments X
ImagePresentationComments X
ImagingServiceRequestComments X
Impressions X
InstanceCoercionDateTime X
InstanceCreationDate X
InstanceCreationTime X
InstanceCreatorUID U
InstitutionAddress X
InstitutionCodeSequence X
InstitutionName X
InstitutionalDepartmentName X
InstitutionalDepartmentTypeCodeSequence X
InsurancePlanIdentification X
IntendedRecipientsOfResultsIdentificationSequence X
InterpretationApproverSequence X
InterpretationAuthor X
InterpretationDiagnosisDescription X
InterpretationIDIssuer X
InterpretationRecorder X
InterpretationText X
InterpretationTranscriber X
IrradiationEventUID U
IssuerOfAdmissionID X
IssuerOfPatientID X
IssuerOfServiceEpisodeID X
LargePaletteColorLookupTableUID U
LastMenstrualDate X
MAC X
MediaStorageSOPInstanceUID U
MedicalAlerts X
MedicalRecordLocator X
MilitaryRank X
ModifiedAttributesSequence X
ModifiedImageDescription X
ModifyingDeviceID X
NameOfPhysiciansReadingStudy X
NamesOfIntendedRecipientsOfResults X
ObservationUID U
Occupation X
OperatorIdentificationSequence X
OperatorsName Z
OrderCallbackPhoneNumber X
OrderEnteredBy X
OrderEntererLocation X
OriginalAttributesSequence X
OtherPatientIDs X
OtherPatientIDsSequence X
OtherPatientNames X
OverlayDate X
OverlayTime X
PaletteColorLookupTableUID U
ParticipantSequence X
PatientAddress X
PatientAge X
PatientBirthDate Z
PatientBirthName X
PatientBirthTime X
PatientComments X
PatientID Z
PatientInstitutionResidence X
PatientInsurancePlanCodeSequence X
PatientMotherBirthName X
PatientName Z
PatientPrimaryLanguageCodeSequence X
PatientPrimaryLanguageModifierCodeSequence X
PatientReligiousPreference X
PatientSex Z
PatientSexNeutered Z
PatientSize X
PatientState X
PatientTelecomInformation X
PatientTelephoneNumbers X
PatientTransportArrangements X
PatientWeight X
PerformedLocation X
PerformedProcedureStepDescription X
PerformedProcedureStepEndDate X
PerformedProcedureStepEndDateTime X
PerformedProcedureStepEndTime X
PerformedProcedureStepID X
PerformedProcedureStepStartDate X
PerformedProcedureStepStartDateTime X
PerformedProcedureStepStartTime X
PerformedStationAETitle X
PerformedStationGeographicLocationCodeSequence X
PerformedStationName X
PerformedStationNameCodeSequence X
PerformingPhysicianIdentificationSequence X
PerformingPhysicianName X
PersonAddress X
PersonIdentificationCodeSequence X
PersonName D
PersonTelecomInformation X
PersonTelephoneNumbers X
PhysicianApprovingInterpretation X
PhysiciansOfRecord X
PhysiciansOfRecordIdentificationSequence X
PhysiciansReadingStudyIdentificationSequence X
PlacerOrderNumberImagingServiceRequest Z
PlateID X
PreMedication X
PregnancyStatus X
ProtocolName X
RadiopharmaceuticalStartDateTime X
RadiopharmaceuticalStartTime X
RadiopharmaceuticalStopDateTime X
RadiopharmaceuticalStopTime X
ReasonForStudy X
ReasonForTheImagingServiceRequest X
ReferencedDigitalSignatureSequence X
ReferencedFrameOfReferenceUID U
ReferencedGeneralPurposeScheduledProcedureStepTransactionUID U
ReferencedPatientAliasSequence X
ReferencedPatientPhotoSequence X
ReferencedPatientSequence X
ReferencedPerformedProcedureStepSequence X
ReferencedSOPInstanceMACSequence X
ReferencedSOPInstanceUID U
ReferencedSOPInstanceUIDInFile U
ReferencedStudySequence X
ReferringPhysicianAddress X
ReferringPhysicianIdentificationSequence X
ReferringPhysicianName Z
ReferringPhysicianTelephoneNumbers X
RegionOfResidence X
RelatedFrameOfReferenceUID U
RequestAttributesSequence X
RequestedContrastAgent X
RequestedProcedureComments X
RequestedProcedureDescription X
RequestedProcedureID X
RequestedProcedureLocation X
RequestedSOPInstanceUID U
RequestingPhysician X
RequestingService X
ResponsibleOrganization X
ResponsiblePerson X
ResultsComments X
ResultsDistributionListSequence X
ResultsIDIssuer X
ReviewerName Z
ScheduledHumanPerformersSequence X
ScheduledPatientInstitutionResidence X
ScheduledPerformingPhysicianIdentificationSequence X
ScheduledPerformingPhysicianName X
ScheduledProcedureStepDescription X
ScheduledProcedureStepEndDate X
ScheduledProcedureStepEndTime X
ScheduledProcedureStepID X
ScheduledProcedureStepLocation X
ScheduledProcedureStepStartDate X
ScheduledProcedureStepStartTime X
ScheduledStationAETitle X
ScheduledStationGeographicLocationCodeSequence X
ScheduledStationName X
ScheduledStationNameCodeSequence X
ScheduledStudyLocation X
ScheduledStudyLocationAETitle X
SeriesDate X
SeriesDescription X
SeriesInstanceUID U
SeriesTime X
ServiceEpisodeDescription X
ServiceEpisodeID X
SmokingStatus X
SOPInstanceUID U
SpecialNeeds X
StationName X
StorageMediaFileSetUID U
StudyComments X
StudyDate Z
StudyDescription X
StudyID Z
StudyIDIssuer X
StudyInstanceUID U
StudyTime Z
SynchronizationFrameOfReferenceUID U
TemplateExtensionCreatorUID U
TemplateExtensionOrganizationUID U
TextComments X
TextString X
TimeOfLastCalibration X
TimezoneOffsetFromUTC X
TopicAuthor X
TopicKeywords X
TopicSubject X
TopicTitle X
TrackingUID U
TransactionUID U
UID U
VerifyingObserverIdentificationCodeSequence Z
VerifyingObserverName D
VerifyingOrganization X
VisitComments X
"""

ACTIONS = ("D", "Z", "X", "K", "U")
#: File meta attributes naming the sending site, removed with the data set's identifiers.
_META_REMOVE = (
    "SourceApplicationEntityTitle",
    "SendingApplicationEntityTitle",
    "ReceivingApplicationEntityTitle",
    "SourcePresentationAddress",
)
#: Dummy values by VR for action D.
_DUMMY = {"PN": "ANONYMOUS", "DA": "19000101", "TM": "000000", "DT": "19000101000000", "CS": "ANONYMOUS"}
DEIDENTIFICATION_METHOD = "PS3.15 E.1 Basic Application Confidentiality Profile (radview)"


def _parse_table(text: str) -> dict[int, str]:
    table = {}
    for line in text.strip().splitlines():
        keyword, action = line.split()
        tag = tag_for_keyword(keyword)
        if tag is None or action not in ACTIONS:
            raise ValueError(f"bad confidentiality profile line: {line!r}")
        table[tag] = action
    return table


#: tag (int) -> action.
PROFILE: dict[int, str] = _parse_table(BASIC_PROFILE_TABLE)


@dataclass
class AnonymizeReport:
    """What :func:`anonymize` did: written files, skipped inputs, UIDs replaced, burned-in warnings."""

    out_dir: Path
    files_written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    uid_map_size: int = 0
    burned_in: list[Path] = field(default_factory=list)
    #: files per BurnedInAnnotation value: 'YES', 'NO' or 'not declared' (the pixels were not checked)
    burned_in_counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class UidMapper:
    """Old UID -> new UID, the same within one run (salted hash: not reversible without the salt)."""

    def __init__(self, salt: str | None = None):
        self._salt = salt or secrets.token_hex(16)
        self.mapping: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        uid = str(uid).strip()
        if not uid:
            return uid
        if uid not in self.mapping:
            self.mapping[uid] = generate_uid(entropy_srcs=[self._salt, uid])
        return self.mapping[uid]

    def pseudonym(self, value: str) -> str:
        """A short stable pseudonym for ``value`` (e.g. a patient ID) within this run."""
        return "ANON-" + hashlib.sha256(f"{self._salt}|{value}".encode()).hexdigest()[:10].upper()


def _is_removed_group(tag) -> bool:
    """Curves (50xx,xxxx), overlay data (60xx,3000) and overlay comments (60xx,4000)."""
    group, element = tag.group, tag.element
    if 0x5000 <= group <= 0x50FF and group % 2 == 0:
        return True
    return 0x6000 <= group <= 0x60FF and group % 2 == 0 and element in (0x3000, 0x4000)


def _apply(ds: Dataset, uids: UidMapper) -> None:
    """Apply the profile to ``ds`` and, recursively, to the items of its sequences (in place)."""
    for tag in list(ds.keys()):
        elem = ds[tag]
        if tag.is_private or _is_removed_group(tag):
            del ds[tag]
            continue
        action = PROFILE.get(int(tag), "K")
        if action == "X":
            del ds[tag]
        elif action == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else ""
        elif action == "D":
            elem.value = Sequence() if elem.VR == "SQ" else _DUMMY.get(elem.VR, "ANONYMOUS")
        elif action == "U" and elem.VR == "UI":
            elem.value = [uids(v) for v in elem.value] if elem.VM > 1 else uids(elem.value)
        if tag in ds and ds[tag].VR == "SQ":
            for item in ds[tag].value:
                _apply(item, uids)


def anonymize_dataset(
    ds: Dataset, uids: UidMapper, *, patient_name: str = "ANON", patient_id: str | None = None, path: Path | None = None
) -> Dataset:
    """De-identify one data set (a completed-UID copy is returned; file meta updated to match).

    ``patient_id`` None gives a per-run pseudonym of the original Patient ID, so several patients
    in one run stay distinct.
    """
    ds = complete_uids(ds, path)
    original_id = str(ds.get("PatientID", "") or "")
    _apply(ds, uids)
    ds.PatientName = patient_name
    ds.PatientID = patient_id if patient_id is not None else uids.pseudonym(original_id)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = [code]
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    _ensure_file_meta(ds)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    for keyword in _META_REMOVE:
        if keyword in ds.file_meta:
            delattr(ds.file_meta, keyword)
    return ds


def _read(path: Path) -> Dataset | str:
    """The file's data set (pixel data read on saving), or why it cannot be anonymized."""
    try:
        ds = read_header(path).dataset
    except CorruptFileError as err:
        log.debug("skipping %s: %s", path, err)
        return err.problem
    return (
        "DICOMDIR (holds identifiers; rebuild it from the anonymized files)" if "DirectoryRecordSequence" in ds else ds
    )


def _ensure_file_meta(ds: Dataset) -> None:
    """Give files read without a file meta header one, with the transfer syntax they were read in."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        implicit = ds.original_encoding[0] if ds.original_encoding[0] is not None else True
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def anonymize(
    in_path: str | PathLike,
    out_dir: str | PathLike,
    *,
    patient_name: str = "ANON",
    patient_id: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> AnonymizeReport:
    """De-identify every DICOM file under ``in_path`` (a file or a folder, recursive) into ``out_dir``.

    Output files are named by their new SOP Instance UID in one folder per new series
    (``<n>_<modality>``), so no original identifier survives in a path. Non-DICOM files and
    DICOMDIRs are skipped and listed in the report. On cancellation the files written so far
    are deleted before Cancelled is raised.
    """
    progress = progress or no_progress
    in_path, out_dir = Path(in_path), Path(out_dir)
    if not in_path.exists():
        raise EmptyInputError("no such file or folder", in_path)
    files = iter_files(in_path)
    report = AnonymizeReport(out_dir=out_dir)
    uids = UidMapper()
    series_dirs: dict[str, Path] = {}
    for n, f in enumerate(files):
        progress(n / max(len(files), 1), f"anonymizing {f.name}")
        if cancel is not None and cancel.cancelled:
            for written in report.files_written:
                written.unlink(missing_ok=True)
            cancel.raise_if_cancelled()
        ds = _read(f)
        if isinstance(ds, str):
            report.skipped.append((f, ds))
            continue
        burned = str(ds.get("BurnedInAnnotation", "") or "").upper()
        try:
            ds = anonymize_dataset(ds, uids, patient_name=patient_name, patient_id=patient_id, path=f)
        except CorruptFileError as err:
            report.skipped.append((f, err.problem))
            continue
        flag = burned if burned in ("YES", "NO") else "not declared"
        report.burned_in_counts[flag] = report.burned_in_counts.get(flag, 0) + 1
        if burned == "YES":
            report.burned_in.append(f)
            report.warnings.append(f"{f}: BurnedInAnnotation YES: identifying text may remain in the pixels")
        series = str(ds.SeriesInstanceUID)
        if series not in series_dirs:
            series_dirs[series] = out_dir / f"{len(series_dirs) + 1:03d}_{ds.get('Modality', 'OT') or 'OT'}"
            series_dirs[series].mkdir(parents=True, exist_ok=True)
        target = series_dirs[series] / f"{ds.SOPInstanceUID}.dcm"
        if target in report.files_written:
            report.warnings.append(f"{f}: same SOP Instance UID as an earlier file; the later one was kept")
        else:
            report.files_written.append(target)
        ds.save_as(target, enforce_file_format=True)
    if not report.files_written:
        raise EmptyInputError("no DICOM files to anonymize", in_path)
    report.uid_map_size = len(uids.mapping)
    progress(1.0, f"anonymized {len(report.files_written)} files")
    for w in report.warnings:
        log.warning(w)
    return report
