-- The revocation date of the certificateHold a certificate was last released from: a delta
-- CRL's removeFromCRL entry carries it as its revocationDate (RFC 5280 knows no placeholder
-- date). NULL for a certificate never released from hold; a release copies revoked_at here
-- before clearing it.
ALTER TABLE certificates ADD COLUMN held_at TIMESTAMP;

-- Releases made before this column existed cleared revoked_at. The hold's date is recovered
-- from the audit log: the hold's `certificate.revoked` entry (details reason certificateHold)
-- is written at the revocation date itself, and the last one is the hold that was released
-- (only a hold can be released; a certificate held again since is revoked, not issued, and
-- keeps its date in revoked_at).
UPDATE certificates SET held_at = (
    SELECT MAX(a.at) FROM audit_log a
    WHERE a.action = 'certificate.revoked'
      AND a.subject = certificates.serial
      AND a.details LIKE '%"reason":"certificateHold"%'
)
WHERE status = 'issued' AND revocation_seq IS NOT NULL AND held_at IS NULL;

-- Where the audit log holds no such entry, the date cannot be known: the certificate's
-- notBefore stands in, the earliest the hold can have begun. It errs early, as a relying party
-- judging a hold would, and is never a made-up date outside the certificate's life.
UPDATE certificates SET held_at = not_before
WHERE status = 'issued' AND revocation_seq IS NOT NULL AND held_at IS NULL;
