// Digital ID's "form post" hand-over: the consent token goes to the CA's page in a POST body,
// never in a URL. The button stays for a browser without script.
'use strict';
(function () {
  function submit() {
    const form = document.getElementById('handover');
    if (form) {
      form.submit();
    }
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', submit);
  } else {
    submit();
  }
})();
