// A relying party's check of one certificate path with the JDK's own PKIX validator
// (java.security.cert.CertPathValidator), the way a Java bank back end validates a citizen's
// certificate. Run as a single-file program: `java tests/tools/PkixValidate.java ARGS`.
//
//   --anchor FILE         trust anchor (PEM or DER), required
//   --cert FILE           the path, end entity first, then the issuing CA (repeatable)
//   --policy OID          an acceptable initial policy (repeatable)
//   --explicit-policy     require a valid policy tree (setExplicitPolicyRequired)
//   --revocation MODE     none | ocsp | crl | ocsp-then-crl (default none)
//                         ocsp: OCSP only (NO_FALLBACK) from each certificate's AIA;
//                         crl: CRLs only (PREFER_CRLS + NO_FALLBACK), from --crl files and,
//                         with --crl-dp, from each certificate's CRL distribution point
//   --end-entity-only     check revocation of the end entity only (ONLY_END_ENTITY)
//   --crl FILE            a CRL to use (repeatable)
//   --crl-dp              fetch CRLs from the distribution points (com.sun.security.enableCRLDP)
//   --delta-crl FILE      a delta CRL to apply after the JDK's own check (repeatable; with --crl
//                         giving the full CRLs). The JDK has no delta CRL support: it skips a
//                         delta given as --crl (its Delta CRL Indicator is critical) and never
//                         reads the Freshest CRL extension. Each delta must be signed by the
//                         issuer of the certificate it speaks about, be current, and extend a
//                         full CRL given here (its base CRL number at most that CRL's number);
//                         a listed certificate is revoked unless the entry is removeFromCRL.
//   --at EPOCH_SECONDS    validate at this time instead of now
//
// Prints one line and exits: 0 "VALID policies=[...]", 2 "REVOKED ...", 1 "INVALID ..."
// (any other failure of the path), 64 on a usage error.

import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.*;
import java.util.*;

public class PkixValidate {
    static byte[] read(String file) throws Exception {
        return Files.readAllBytes(Path.of(file));
    }

    static X509Certificate cert(CertificateFactory cf, String file) throws Exception {
        return (X509Certificate) cf.generateCertificate(new ByteArrayInputStream(read(file)));
    }

    static void usage(String why) {
        System.out.println("USAGE " + why);
        System.exit(64);
    }

    public static void main(String[] args) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        X509Certificate anchor = null;
        List<X509Certificate> path = new ArrayList<>();
        Set<String> policies = new HashSet<>();
        List<CRL> crls = new ArrayList<>();
        List<X509CRL> deltas = new ArrayList<>();
        boolean explicit = false, endEntityOnly = false, crlDp = false;
        String mode = "none";
        Date at = new Date();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = (i + 1 < args.length) ? args[i + 1] : null;
            switch (a) {
                case "--anchor" -> { anchor = cert(cf, v); i++; }
                case "--cert" -> { path.add(cert(cf, v)); i++; }
                case "--policy" -> { policies.add(v); i++; }
                case "--explicit-policy" -> explicit = true;
                case "--revocation" -> { mode = v; i++; }
                case "--end-entity-only" -> endEntityOnly = true;
                case "--crl" -> { crls.add(cf.generateCRL(new ByteArrayInputStream(read(v)))); i++; }
                case "--crl-dp" -> crlDp = true;
                case "--delta-crl" -> { deltas.add((X509CRL) cf.generateCRL(new ByteArrayInputStream(read(v)))); i++; }
                case "--at" -> { at = new Date(Long.parseLong(v) * 1000L); i++; }
                default -> usage("unknown argument " + a);
            }
        }
        if (anchor == null || path.isEmpty()) usage("--anchor and --cert are required");
        if (crlDp) System.setProperty("com.sun.security.enableCRLDP", "true");

        CertPathValidator validator = CertPathValidator.getInstance("PKIX");
        PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(anchor, null)));
        params.setDate(at);
        if (!policies.isEmpty()) params.setInitialPolicies(policies);
        params.setExplicitPolicyRequired(explicit);
        if (!crls.isEmpty()) {
            params.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(crls)));
        }
        if (mode.equals("none")) {
            params.setRevocationEnabled(false);
        } else {
            params.setRevocationEnabled(true);
            PKIXRevocationChecker checker = (PKIXRevocationChecker) validator.getRevocationChecker();
            Set<PKIXRevocationChecker.Option> options = EnumSet.noneOf(PKIXRevocationChecker.Option.class);
            switch (mode) {
                case "ocsp" -> options.add(PKIXRevocationChecker.Option.NO_FALLBACK);
                case "crl" -> {
                    options.add(PKIXRevocationChecker.Option.PREFER_CRLS);
                    options.add(PKIXRevocationChecker.Option.NO_FALLBACK);
                }
                case "ocsp-then-crl" -> { }
                default -> usage("unknown revocation mode " + mode);
            }
            if (endEntityOnly) options.add(PKIXRevocationChecker.Option.ONLY_END_ENTITY);
            checker.setOptions(options);
            params.addCertPathChecker(checker);
        }
        try {
            PKIXCertPathValidatorResult result =
                (PKIXCertPathValidatorResult) validator.validate(cf.generateCertPath(path), params);
            if (!deltas.isEmpty()) {
                String revoked = checkDeltas(path, anchor, crls, deltas, at, endEntityOnly);
                if (revoked != null) {
                    System.out.println("REVOKED " + revoked);
                    System.exit(2);
                }
            }
            List<String> valid = new ArrayList<>();
            PolicyNode tree = result.getPolicyTree();
            if (tree != null) collect(tree, valid);
            Collections.sort(valid);
            System.out.println("VALID policies=" + valid);
        } catch (CertPathValidatorException e) {
            if (e.getReason() == CertPathValidatorException.BasicReason.REVOKED) {
                System.out.println("REVOKED index=" + e.getIndex() + " " + e.getMessage());
                System.exit(2);
            }
            System.out.println("INVALID reason=" + e.getReason() + " index=" + e.getIndex() + " " + e.getMessage());
            System.exit(1);
        }
    }

    static final String DELTA_CRL_INDICATOR = "2.5.29.27", CRL_NUMBER = "2.5.29.20";

    /**
     * RFC 5280 6.3.3 for the delta CRLs the JDK cannot apply: returns why a certificate of the
     * (already validated) path is revoked, or null. Throws CertPathValidatorException
     * (INVALID) when a delta cannot be used: unsigned by the issuer, stale, or extending a
     * full CRL newer than any given.
     */
    static String checkDeltas(List<X509Certificate> path, X509Certificate anchor, List<CRL> fulls,
                              List<X509CRL> deltas, Date at, boolean endEntityOnly) throws Exception {
        int last = endEntityOnly ? 1 : path.size();
        for (int i = 0; i < last; i++) {
            X509Certificate cert = path.get(i);
            X509Certificate issuer = (i + 1 < path.size()) ? path.get(i + 1) : anchor;
            for (X509CRL delta : deltas) {
                if (!delta.getIssuerX500Principal().equals(issuer.getSubjectX500Principal())) continue;
                try {
                    delta.verify(issuer.getPublicKey());
                } catch (Exception e) {
                    throw new CertPathValidatorException("delta CRL not signed by " + issuer.getSubjectX500Principal());
                }
                if (delta.getThisUpdate().after(at) || delta.getNextUpdate() == null || delta.getNextUpdate().before(at)) {
                    throw new CertPathValidatorException("delta CRL not current");
                }
                java.math.BigInteger base = integerExtension(delta, DELTA_CRL_INDICATOR);
                if (base == null) throw new CertPathValidatorException("not a delta CRL");
                boolean extendsAFull = false;
                for (CRL c : fulls) {
                    X509CRL full = (X509CRL) c;
                    java.math.BigInteger number = integerExtension(full, CRL_NUMBER);
                    if (full.getIssuerX500Principal().equals(delta.getIssuerX500Principal())
                        && number != null && base.compareTo(number) <= 0) extendsAFull = true;
                }
                if (!extendsAFull) {
                    throw new CertPathValidatorException("delta CRL extends CRL number " + base + ", newer than every full CRL given");
                }
                X509CRLEntry entry = delta.getRevokedCertificate(cert);
                if (entry != null && entry.getRevocationReason() != CRLReason.REMOVE_FROM_CRL) {
                    return "index=" + i + " listed on the delta CRL, reason: " + entry.getRevocationReason();
                }
            }
        }
        return null;
    }

    /** The INTEGER inside the extension `oid` of `crl` (DER in an OCTET STRING), or null. */
    static java.math.BigInteger integerExtension(X509CRL crl, String oid) throws Exception {
        byte[] octets = crl.getExtensionValue(oid);
        if (octets == null) return null;
        byte[] inner = derValue(octets, (byte) 0x04);
        return new java.math.BigInteger(derValue(inner, (byte) 0x02));
    }

    /** The contents of the DER element of type `tag` at the start of `der`. */
    static byte[] derValue(byte[] der, byte tag) throws CertPathValidatorException {
        if (der.length < 2 || der[0] != tag) throw new CertPathValidatorException("bad extension");
        int len = der[1] & 0xff, off = 2;
        if (len > 0x80) {
            int n = len - 0x80;
            if (n > 3 || der.length < 2 + n) throw new CertPathValidatorException("bad extension");
            len = 0;
            for (int k = 0; k < n; k++) len = (len << 8) | (der[2 + k] & 0xff);
            off = 2 + n;
        } else if (len == 0x80) {
            throw new CertPathValidatorException("bad extension");
        }
        if (der.length < off + len) throw new CertPathValidatorException("bad extension");
        return Arrays.copyOfRange(der, off, off + len);
    }

    static void collect(PolicyNode node, List<String> out) {
        if (node.getDepth() > 0 && !node.getChildren().hasNext() && !out.contains(node.getValidPolicy())) {
            out.add(node.getValidPolicy());
        }
        Iterator<? extends PolicyNode> it = node.getChildren();
        while (it.hasNext()) collect(it.next(), out);
    }
}
