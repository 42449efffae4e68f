#!/usr/bin/env python3
"""A relying party's check of one certificate path with pyhanko-certvalidator (the validator
behind pyHanko's PDF signature checks), the way a Python service validates a citizen's
certificate. Run: `python3 tests/tools/pyhanko_validate.py ARGS`.

  --anchor FILE         trust anchor (PEM or DER), required
  --cert FILE           the end-entity certificate, required
  --intermediate FILE   a CA certificate of the path (repeatable)
  --revocation MODE     ocsp | crl (required): which revocation data must be found and checked
                        (RevocationCheckingRule OCSP_REQUIRED / CRL_REQUIRED, hard fail)
  --end-entity-only     require revocation data for the end entity only (the CAs above it
                        are not checked: NO_CHECK)
  --crl FILE            a CRL to use, full or delta (repeatable); deltas are applied to the
                        full CRL they extend (RFC 5280 6.3.3)
  --fetch               fetch what is missing from the certificates' URLs (OCSP from the AIA,
                        full CRLs from the distribution points; never delta CRLs)

Prints one line and exits: 0 "VALID", 2 "REVOKED ...", 1 "INVALID ..." (any other failure
of the path, missing revocation data included), 64 on a usage error.
"""

import argparse
import asyncio
import sys
from datetime import timedelta

from asn1crypto import pem, x509

from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.errors import PathValidationError, RevokedError
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)


def der(file):
    with open(file, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return data


def cert(file):
    return x509.Certificate.load(der(file))


class Usage(argparse.ArgumentParser):
    def error(self, message):
        print("USAGE " + message)
        sys.exit(64)


async def main():
    p = Usage(add_help=False)
    p.add_argument("--anchor", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--intermediate", action="append", default=[])
    p.add_argument("--revocation", required=True, choices=["ocsp", "crl"])
    p.add_argument("--end-entity-only", action="store_true")
    p.add_argument("--crl", action="append", default=[])
    p.add_argument("--fetch", action="store_true")
    a = p.parse_args()

    rule = {
        "ocsp": RevocationCheckingRule.OCSP_REQUIRED,
        "crl": RevocationCheckingRule.CRL_REQUIRED,
    }[a.revocation]
    policy = CertRevTrustPolicy(
        RevocationCheckingPolicy(
            ee_certificate_rule=rule,
            intermediate_ca_cert_rule=(
                RevocationCheckingRule.NO_CHECK if a.end_entity_only else rule
            ),
        )
    )
    # The fetchers closed before the event loop ends: nothing left open at exit.
    async with AIOHttpFetcherBackend() as fetchers:
        context = ValidationContext(
            trust_roots=[cert(a.anchor)],
            other_certs=[cert(f) for f in a.intermediate],
            crls=[der(f) for f in a.crl],
            allow_fetching=a.fetch,
            fetchers=fetchers,
            revinfo_policy=policy,
            # The validation time is fixed when the context is made; an OCSP response
            # signed a second later is "too recent" under the default tolerance of 1 s.
            time_tolerance=timedelta(minutes=1),
        )
        validator = CertificateValidator(cert(a.cert), validation_context=context)
        try:
            await validator.async_validate_usage(set())
        except RevokedError as e:
            print("REVOKED " + str(e))
            return 2
        except PathValidationError as e:
            print("INVALID " + str(e))
            return 1
    print("VALID")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
