// Test key material: RSA keys, self-signed certificates and a small CA, all generated at startup.
import { webcrypto, createPrivateKey, createHash, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };

async function keyPair() {
  return webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
}

async function keyPem(keys) {
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' });
}

const serial = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString('hex').replace(/^[89a-f]/, '1');

/** A self-signed certificate for a private_key_jwt client: { certPem, keyPem, privateKey (KeyObject), x5tS256 }. */
export async function selfSignedClientCert(cn) {
  const keys = await keyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: `CN=${cn}`, keys, signingAlgorithm: RSA,
    notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
  });
  const pem = await keyPem(keys);
  const der = Buffer.from(cert.rawData);
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: pem,
    privateKey: createPrivateKey(pem),
    x5tS256: createHash('sha256').update(der).digest('base64url'),
  };
}

/** A CA and a server certificate for localhost / 127.0.0.1 / ::1 signed by it. */
export async function caAndServerCert() {
  const now = Date.now();
  const caKeys = await keyPair();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: 'CN=dcr-shim e2e test CA', keys: caKeys, signingAlgorithm: RSA,
    notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leafKeys = await keyPair();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(), subject: 'CN=localhost', issuer: ca.subject,
    notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
    signingKey: caKeys.privateKey, publicKey: leafKeys.publicKey, signingAlgorithm: RSA,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }, { type: 'ip', value: '::1' },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return {
    caPem: ca.toString('pem') + '\n',
    certPem: leaf.toString('pem') + '\n',
    keyPem: await keyPem(leafKeys),
  };
}

// Sanity helper for debugging.
export function describeCert(pem) { return new X509Certificate(pem).subject; }
