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

    static void collect(PolicyNode node, List<String> out) {
        if (node.getDepth() > 0 && !node.getChildren().hasNext() && !out.contains(node.getValidPolicy())) {
            out.add(node.getValidPolicy());
        }
        Iterator<? extends PolicyNode> it = node.getChildren();
        while (it.hasNext()) collect(it.next(), out);
    }
}
