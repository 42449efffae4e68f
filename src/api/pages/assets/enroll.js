// The citizen's enrollment page (steps 22–28): session, local agent, agreement, form, folder,
// submission, status, password, download. Contract: docs/citizen-pages.md. All text comes from
// /enroll/assets/i18n/<lang>.json; a static key is always a call of t with one quoted literal,
// and every problem shown is a call of showProblem with one (the unit tests read both forms).
'use strict';

(function () {
  const LANGS = ['kk', 'ru', 'en'];
  const SECTIONS = [
    'step-no-session', 'step-no-agent', 'step-agreement', 'step-form',
    'step-status', 'step-password', 'step-done',
  ];
  const body = document.body;
  const $ = (id) => document.getElementById(id);

  const state = {
    mode: body.dataset.mode === 'resume' ? 'resume' : 'enroll',
    agentUrl: (body.dataset.agentUrl || 'http://127.0.0.1:13580').replace(/\/+$/, ''),
    digitalIdUrl: body.dataset.digitalIdUrl || '/dev/digital-id',
    lang: LANGS.includes(body.dataset.lang) ? body.dataset.lang : 'kk',
    dicts: {},
    session: null,        // GET /enroll/api/session
    agreementVersion: null,
    folder: null,         // the chosen folder (absolute path, from the agent)
    roots: [],            // the allowed directories the agent listed
    submitted: null,      // {id, accessToken, handle, bound}
    folderAgain: false,   // the containers go to a folder chosen at download, not the bound one
    application: null,    // the last ApplicationResponse
    problem: null,        // {code, detail, source} shown in #message
    status: null,         // the last status word
    result: null,         // {folder, files}
    busy: false,
  };

  // ---------- translations ----------

  function dict() {
    return state.dicts[state.lang] || {};
  }

  function has(key) {
    return Object.prototype.hasOwnProperty.call(dict(), key);
  }

  function t(key) {
    return has(key) ? dict()[key] : key;
  }

  // A code the agent answered is read as the agent's first: some codes (`not_found`,
  // `internal_error`, `request_malformed`) are the server's too, with another meaning.
  function problemText(code, source) {
    const families = source === 'agent'
      ? ['agent_error.', 'error.', 'page_error.']
      : ['error.', 'agent_error.', 'page_error.'];
    for (const family of families) {
      if (has(family + code)) return t(family + code);
    }
    return t('error.generic');
  }

  async function loadDict(lang) {
    if (state.dicts[lang]) return;
    const res = await fetch('/enroll/assets/i18n/' + lang + '.json', { cache: 'no-cache' });
    if (!res.ok) throw new Error('translations ' + res.status);
    state.dicts[lang] = await res.json();
  }

  function applyTexts() {
    document.documentElement.lang = state.lang;
    for (const el of document.querySelectorAll('[data-i18n]')) {
      el.textContent = t(el.dataset.i18n);
    }
    for (const el of document.querySelectorAll('[data-i18n-label]')) {
      el.setAttribute('aria-label', t(el.dataset.i18nLabel));
    }
    document.title = t('page.title');
    for (const button of document.querySelectorAll('button.lang')) {
      button.setAttribute('aria-pressed', button.dataset.lang === state.lang ? 'true' : 'false');
    }
    renderCommand();
    renderIdentity();
    renderFolder();
    renderStatus();
    renderProblem();
    renderRules();
    renderResult();
  }

  function setLangCookie(lang) {
    let cookie = 'tamga_lang=' + lang + '; Path=/; SameSite=Lax; Max-Age=31536000';
    if (location.protocol === 'https:') cookie += '; Secure';
    document.cookie = cookie;
  }

  async function switchLang(lang) {
    if (!LANGS.includes(lang)) return;
    try {
      await loadDict(lang);
    } catch (e) {
      showProblem('service_unavailable');
      return;
    }
    state.lang = lang;
    body.dataset.lang = lang;
    setLangCookie(lang);
    applyTexts();
    if (state.agreementVersion && !$('step-agreement').hidden) {
      await loadAgreement();
    }
  }

  // ---------- sections and messages ----------

  function show(...ids) {
    $('loading').hidden = true;
    for (const id of SECTIONS) {
      $(id).hidden = !ids.includes(id);
    }
  }

  // `source`: 'agent' for the agent's answers, else the server's or the page's own.
  function showProblem(code, detail, source) {
    state.problem = { code: code, detail: detail || null, source: source || 'server' };
    renderProblem();
  }

  // A failure caught from `server` or `agent`, shown with where it came from.
  function showFailure(e) {
    if (e instanceof Problem) {
      showProblem(e.code, e.detail, e.source);
    } else {
      showProblem('internal_error');
    }
  }

  function clearProblem() {
    state.problem = null;
    renderProblem();
  }

  function renderProblem() {
    const box = $('message');
    if (!state.problem) {
      box.hidden = true;
      box.textContent = '';
      box.removeAttribute('data-code');
      box.removeAttribute('data-source');
      return;
    }
    box.textContent = problemText(state.problem.code, state.problem.source);
    box.dataset.source = state.problem.source;
    box.dataset.code = state.problem.code;
    box.hidden = false;
  }

  function setBusy(busy) {
    state.busy = busy;
    body.classList.toggle('busy', busy);
    for (const id of ['submit-application', 'refresh', 'download', 'make-folder', 'choose-folder', 'retry-agent']) {
      $(id).disabled = busy;
    }
  }

  // ---------- talking to the server and the agent ----------

  class Problem extends Error {
    constructor(code, status, detail, source) {
      super(code);
      this.code = code;
      this.status = status;
      this.detail = detail || null;
      this.source = source || 'server';
    }
  }

  async function readJson(res) {
    try {
      return await res.json();
    } catch (e) {
      return null;
    }
  }

  // The server's page API: problem documents carry a stable `code`.
  async function server(method, path, options) {
    const opts = options || {};
    const headers = { Accept: 'application/json' };
    let payload;
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(opts.json);
    }
    if (opts.csrf) headers['X-CSRF-Token'] = opts.csrf;
    if (opts.bearer) headers.Authorization = 'Bearer ' + opts.bearer;
    let res;
    try {
      res = await fetch(path, {
        method: method,
        headers: headers,
        body: payload,
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      throw new Problem('service_unavailable', 0);
    }
    const data = await readJson(res);
    if (!res.ok) {
      const code = data && typeof data.code === 'string' ? data.code : 'internal_error';
      throw new Problem(code, res.status, data && data.detail);
    }
    return data;
  }

  // The local agent: `{"code", "detail"}` on refusal; no answer at all is `agent_unreachable`.
  async function agent(method, path, json, timeoutMs) {
    const init = { method: method, mode: 'cors', credentials: 'omit', cache: 'no-store', headers: {} };
    if (json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    }
    if (timeoutMs && typeof AbortSignal !== 'undefined' && AbortSignal.timeout) {
      init.signal = AbortSignal.timeout(timeoutMs);
    }
    let res;
    try {
      res = await fetch(state.agentUrl + path, init);
    } catch (e) {
      // Also what a refusal of this page's origin looks like: the agent's 403 carries no
      // CORS header, so the browser hides it and fetch throws.
      throw new Problem('agent_unreachable', 0, null, 'agent');
    }
    const data = await readJson(res);
    if (!res.ok) {
      const code = data && typeof data.code === 'string' ? data.code : 'internal_error';
      throw new Problem(code, res.status, data && data.detail, 'agent');
    }
    if (data === null) throw new Problem('internal_error', res.status, null, 'agent');
    return data;
  }

  function codeOf(e) {
    return e instanceof Problem ? e.code : 'internal_error';
  }

  function isSessionGone(code) {
    return code === 'session_invalid' || code === 'consent_token_expired';
  }

  function noSession(code) {
    state.session = null;
    show('step-no-session');
    showProblem(code);
  }

  // ---------- steps ----------

  async function start() {
    $('back-to-digital-id').href = state.digitalIdUrl;
    if (state.mode === 'resume') {
      await startResume();
    } else {
      await startEnroll();
    }
  }

  async function startEnroll() {
    try {
      state.session = await server('GET', '/enroll/api/session');
    } catch (e) {
      const code = codeOf(e);
      if (isSessionGone(code) || (e instanceof Problem && e.status === 401)) {
        noSession(code);
      } else {
        show();
        showProblem(code);
      }
      return;
    }
    state.agreementVersion = state.session.agreement_version;
    renderIdentity();
    if (!(await checkAgent())) return;
    // A submission whose answer or binding was lost (reload, network, 503) is sent again,
    // identical, and bound with the same keys; one already bound is resumed from the agent.
    const pending = loadPending();
    if (pending) {
      state.folder = pending.folder;
      renderFolder();
      show('step-form');
      await submitApplication();
      return;
    }
    if (state.session.application_id) {
      await resumeFromAgent(state.session.application_id);
      return;
    }
    await loadAgreement();
    show('step-agreement');
  }

  async function startResume() {
    const id = body.dataset.application || '';
    if (!(await checkAgent())) return;
    if (!id) {
      show();
      showProblem('application_not_found');
      return;
    }
    await resumeFromAgent(id);
  }

  // Step 6 of the journey: the local agent must answer before anything is asked of it.
  async function checkAgent() {
    try {
      const version = await agent('GET', '/agent/v1/version', undefined, 5000);
      if (!version || version.protocol !== 1) throw new Problem('agent_unreachable', 0, null, 'agent');
      return true;
    } catch (e) {
      show('step-no-agent');
      // `origin_not_allowed` is kept for an agent that would let the page read it; today's
      // refusal reaches the page as `agent_unreachable`, whose text names both causes.
      if (codeOf(e) === 'origin_not_allowed') {
        showProblem('origin_not_allowed', null, 'agent');
      } else {
        showProblem('agent_unreachable', null, 'agent');
      }
      return false;
    }
  }

  async function retryAgent() {
    if (state.busy) return;
    setBusy(true);
    clearProblem();
    $('loading').hidden = false;
    try {
      await start();
    } finally {
      setBusy(false);
    }
  }

  async function resumeFromAgent(id) {
    let held;
    try {
      held = await agent('GET', '/agent/v1/applications/' + encodeURIComponent(id));
    } catch (e) {
      show();
      showFailure(e);
      return;
    }
    state.submitted = {
      id: held.application_id || id,
      accessToken: held.access_token,
      handle: null,
      bound: true,
    };
    state.folder = held.folder || null;
    renderFolder();
    boundAddress(state.submitted.id);
    show('step-status');
    await refreshStatus();
  }

  async function loadAgreement() {
    const version = state.agreementVersion;
    try {
      const res = await fetch(
        '/enroll/agreement/' + encodeURIComponent(version) + '/' + state.lang,
        { cache: 'no-store', credentials: 'same-origin' },
      );
      if (!res.ok) {
        const data = await readJson(res);
        throw new Problem(data && typeof data.code === 'string' ? data.code : 'not_found', res.status);
      }
      $('agreement-text').textContent = await res.text();
    } catch (e) {
      showProblem(e instanceof Problem ? e.code : 'service_unavailable');
    }
  }

  function confirmAgreement() {
    if (!$('agree').checked) {
      showProblem('agreement_not_accepted');
      return;
    }
    clearProblem();
    show('step-form');
    $('email').focus();
  }

  // The exact command that starts the agent for this page's origin.
  function renderCommand() {
    $('agent-command').textContent =
      'tamga-enroll agent --origin ' + location.origin + ' --allow-dir ' + t('no_agent.folder_placeholder');
  }

  function renderIdentity() {
    const line = $('identity');
    const who = state.session && state.session.identity;
    if (!who) {
      line.textContent = '';
      return;
    }
    line.textContent = t('form.identity') + ' ' + [who.surname, who.name].filter(Boolean).join(' ');
  }

  // ---------- the folder chooser ----------

  function renderFolder() {
    const out = $('folder');
    if (state.folder) {
      out.textContent = state.folder;
      out.classList.remove('empty');
    } else {
      out.textContent = t('form.folder_none');
      out.classList.add('empty');
    }
    for (const button of document.querySelectorAll('#folder-list button.folder')) {
      button.setAttribute('aria-pressed', button.dataset.path === state.folder ? 'true' : 'false');
    }
  }

  function folderButton(path, isRoot) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = isRoot ? 'folder root' : 'folder';
    button.dataset.path = path;
    button.textContent = path;
    button.addEventListener('click', () => {
      state.folder = path;
      clearProblem();
      renderFolder();
    });
    li.appendChild(button);
    return li;
  }

  async function loadFolders() {
    const listing = await agent('GET', '/agent/v1/folders');
    const list = $('folder-list');
    list.replaceChildren();
    state.roots = (listing.roots || []).map((root) => root.path);
    for (const root of listing.roots || []) {
      list.appendChild(folderButton(root.path, true));
      for (const sub of root.folders || []) {
        list.appendChild(folderButton(sub, false));
      }
    }
    renderFolder();
  }

  async function chooseFolder() {
    if (state.busy) return;
    const chooser = $('folder-chooser');
    clearProblem();
    setBusy(true);
    try {
      await loadFolders();
      chooser.hidden = false;
      $('choose-folder').setAttribute('aria-expanded', 'true');
    } catch (e) {
      showFailure(e);
    } finally {
      setBusy(false);
    }
  }

  async function makeFolder() {
    if (state.busy) return;
    const name = $('new-folder-name').value.trim();
    // A new folder goes into the chosen one, else into the first allowed directory.
    const parent = state.folder || state.roots[0];
    if (!parent) {
      showProblem('folder_required');
      return;
    }
    if (!name) {
      showProblem('folder_name_invalid');
      return;
    }
    clearProblem();
    setBusy(true);
    try {
      const made = await agent('POST', '/agent/v1/folders', { parent: parent, name: name });
      state.folder = made.path;
      $('new-folder-name').value = '';
      await loadFolders();
    } catch (e) {
      showFailure(e);
    } finally {
      setBusy(false);
    }
  }

  // ---------- submission ----------

  // The one submission this tab has under way, kept in sessionStorage from before its POST
  // until the agent has bound its keys: the keys' handle, the exact request body, the folder,
  // and the session's CSRF token (a slot of another session is not this one's).
  const PENDING = 'tamga_enroll.pending';

  function storage() {
    try {
      return window.sessionStorage;
    } catch (e) {
      return null;
    }
  }

  function loadPending() {
    const store = storage();
    const csrf = state.session && state.session.csrf_token;
    if (!store || !csrf) return null;
    let pending = null;
    try {
      pending = JSON.parse(store.getItem(PENDING) || 'null');
    } catch (e) {
      pending = null;
    }
    if (!pending || pending.csrf !== csrf || typeof pending.handle !== 'string'
      || !pending.request || typeof pending.folder !== 'string') {
      if (pending) clearPending();
      return null;
    }
    return pending;
  }

  function savePending(pending) {
    const store = storage();
    if (!store) return;
    try {
      store.setItem(PENDING, JSON.stringify(pending));
    } catch (e) {
      // Without storage a lost answer cannot be sent again; the flow itself still works.
    }
  }

  function clearPending() {
    const store = storage();
    if (store) store.removeItem(PENDING);
  }

  // Whether application `id` was submitted with an e-mail: true, false, or null (unknown).
  function rememberEmail(id, withEmail) {
    const store = storage();
    if (!store) return;
    try {
      store.setItem('tamga_enroll.email.' + id, withEmail ? '1' : '0');
    } catch (e) {
      // Unknown then: the page shows the resume link.
    }
  }

  function emailKnown(id) {
    const store = storage();
    const value = store ? store.getItem('tamga_enroll.email.' + id) : null;
    return value === null ? null : value === '1';
  }

  // The server refused the request itself (not the session, not a passing trouble): the kept
  // request will never be taken, so the next "Submit" starts afresh.
  function refusedForGood(e) {
    return e instanceof Problem && e.source === 'server' && e.status >= 400 && e.status < 500
      && e.status !== 401 && e.status !== 408 && e.status !== 429;
  }

  const EMAIL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

  async function submitApplication() {
    if (state.busy) return;
    clearProblem();
    const email = $('email').value.trim();
    if (email && (email.length > 254 || !EMAIL.test(email))) {
      showProblem('email_invalid');
      $('email').focus();
      return;
    }
    if (!state.folder) {
      showProblem('folder_required');
      return;
    }
    const storageType = $('storage').value;
    const keyType = $('key-type').value;
    setBusy(true);
    try {
      // A submission the server took but the agent did not bind is only bound again; one whose
      // answer was lost is sent again identical (the server answers it with the same
      // application): new keys would be a different request, refused as a replayed token.
      if (!state.submitted) {
        let pending = loadPending();
        if (!pending) {
          const keys = await agent('POST', '/agent/v1/keys', {
            auth: { key_type: keyType },
            sign: { key_type: keyType },
            email: email || null,
          });
          const request = {
            agreement_version: state.agreementVersion,
            agreement_accepted: true,
            language: state.lang,
            storage: storageType,
            csrs: { auth: keys.csrs.auth, sign: keys.csrs.sign },
          };
          if (email) request.email = email;
          pending = {
            csrf: state.session && state.session.csrf_token,
            handle: keys.handle,
            request: request,
            folder: state.folder,
          };
          savePending(pending);
        }
        let app;
        try {
          app = await server('POST', '/enroll/api/applications', {
            json: pending.request,
            csrf: state.session && state.session.csrf_token,
          });
        } catch (e) {
          if (refusedForGood(e)) clearPending();
          throw e;
        }
        state.application = app;
        state.submitted = { id: app.id, accessToken: app.access_token, handle: pending.handle, bound: false };
        rememberEmail(app.id, Boolean(pending.request.email));
      }
      if (!state.submitted.bound) {
        try {
          await agent('POST', '/agent/v1/applications', {
            handle: state.submitted.handle,
            application_id: state.submitted.id,
            access_token: state.submitted.accessToken,
            folder: state.folder,
          });
        } catch (e) {
          // The agent no longer has these keys (pruned, another agent): the kept request
          // cannot be bound, whatever is tried again.
          if (e instanceof Problem && e.source === 'agent' && e.code === 'keys_not_found') {
            clearPending();
          }
          throw e;
        }
        state.submitted.bound = true;
        clearPending();
        boundAddress(state.submitted.id);
      }
      showApplication(state.application || { id: state.submitted.id, status: 'pending_review' });
    } catch (e) {
      const code = codeOf(e);
      if (isSessionGone(code)) {
        noSession(code);
      } else {
        showFailure(e);
      }
    } finally {
      setBusy(false);
    }
  }

  // Once bound, this tab's address is the resume page: a reload after the session's token
  // expired finishes with the agent's keys instead of sending the citizen back to Digital ID.
  function boundAddress(id) {
    const address = '/enroll/resume?application=' + encodeURIComponent(id);
    try {
      history.replaceState(null, '', address);
    } catch (e) {
      return;
    }
    state.mode = 'resume';
    body.dataset.mode = 'resume';
    body.dataset.application = id;
  }

  // ---------- status ----------

  function showApplication(app) {
    state.application = app;
    state.status = app.status;
    if (app.status === 'issued') {
      show('step-status', 'step-password');
      renderRules();
    } else {
      show('step-status');
    }
    renderStatus();
  }

  function renderStatus() {
    const el = $('status');
    const word = state.status;
    // The e-mail is promised only when the application has one; else (or when this tab
    // cannot tell) the resume link is the way back.
    const id = state.submitted ? state.submitted.id : '';
    const withEmail = id ? emailKnown(id) : null;
    $('pending-note').hidden = !(word === 'pending_review' && withEmail === true);
    $('pending-resume').hidden = !(word === 'pending_review' && withEmail !== true);
    const link = $('resume-link');
    const address = id ? '/enroll/resume?application=' + encodeURIComponent(id) : '';
    link.href = address || '#';
    link.textContent = address ? location.origin + address : '';
    $('rejected-note').hidden = word !== 'rejected';
    $('application-id').textContent = state.submitted ? state.submitted.id : '';
    if (!word) {
      el.textContent = '';
      el.dataset.status = '';
      return;
    }
    el.dataset.status = word;
    el.textContent = t('status.' + word) + ' (' + word + ')';
    $('rejected-reason').textContent = (state.application && state.application.reason) || '';
  }

  async function fetchApplication() {
    return server('GET', '/enroll/api/applications/' + encodeURIComponent(state.submitted.id), {
      bearer: state.submitted.accessToken,
    });
  }

  async function refreshStatus() {
    if (!state.submitted) return;
    clearProblem();
    setBusy(true);
    try {
      showApplication(await fetchApplication());
    } catch (e) {
      showFailure(e);
    } finally {
      setBusy(false);
    }
  }

  // ---------- password and download ----------

  // The container password policy of the agent (and of the real service): 6–32 characters,
  // an upper-case letter, a lower-case letter, a digit.
  function passwordRules() {
    const pw = $('password').value;
    const repeat = $('password-repeat').value;
    const len = Array.from(pw).length;
    return {
      'rule-length': len >= 6 && len <= 32,
      'rule-upper': /\p{Uppercase}/u.test(pw),
      'rule-lower': /\p{Lowercase}/u.test(pw),
      'rule-digit': /[0-9]/.test(pw),
      'rule-same': pw.length > 0 && pw === repeat,
    };
  }

  function renderRules() {
    const rules = passwordRules();
    for (const [id, met] of Object.entries(rules)) {
      $(id).classList.toggle('ok', met);
    }
  }

  async function download() {
    if (state.busy || !state.submitted) return;
    clearProblem();
    const rules = passwordRules();
    if (!(rules['rule-length'] && rules['rule-upper'] && rules['rule-lower'] && rules['rule-digit'])) {
      showProblem('password_policy');
      $('password').focus();
      return;
    }
    if (!rules['rule-same']) {
      showProblem('password_mismatch');
      $('password-repeat').focus();
      return;
    }
    if (state.folderAgain && !state.folder) {
      showProblem('folder_required');
      return;
    }
    setBusy(true);
    try {
      const app = await fetchApplication();
      if (app.status !== 'issued') {
        showApplication(app);
        return;
      }
      const request = {
        application_id: state.submitted.id,
        password: $('password').value,
        certificates: (app.certificates || []).map((c) => ({ kind: c.kind, pem: c.pem })),
        chain_pem: app.chain_pem || '',
      };
      if (state.folderAgain) request.folder = state.folder;
      const written = await agent('POST', '/agent/v1/containers', request);
      $('password').value = '';
      $('password-repeat').value = '';
      state.result = { folder: written.folder, files: written.files || [] };
      renderResult();
      show('step-done');
    } catch (e) {
      showFailure(e);
      const code = codeOf(e);
      if (e instanceof Problem && e.source === 'agent'
        && (code === 'folder_not_allowed' || code === 'file_exists')) {
        offerFolderAgain(code);
      }
    } finally {
      setBusy(false);
    }
  }

  // The bound folder is gone (deleted, renamed) or holds files of the same names: the
  // folder chooser moves into the password step, and the next download names the folder.
  function offerFolderAgain(code) {
    if (code === 'folder_not_allowed') state.folder = null;
    state.folderAgain = true;
    const again = $('folder-again');
    again.appendChild($('folder-field'));
    again.hidden = false;
    renderFolder();
    $('folder-chooser').hidden = false;
    $('choose-folder').setAttribute('aria-expanded', 'true');
    loadFolders().catch(showFailure);
  }

  function renderResult() {
    if (!state.result) return;
    $('result-folder').textContent = state.result.folder;
    const list = $('result-files');
    list.replaceChildren();
    for (const name of state.result.files) {
      const li = document.createElement('li');
      const code = document.createElement('code');
      code.textContent = name;
      li.appendChild(code);
      list.appendChild(li);
    }
  }

  // ---------- wiring ----------

  function wire() {
    for (const button of document.querySelectorAll('button.lang')) {
      button.addEventListener('click', () => switchLang(button.dataset.lang));
    }
    $('agree').addEventListener('change', () => {
      $('confirm-agreement').disabled = !$('agree').checked;
    });
    $('confirm-agreement').addEventListener('click', confirmAgreement);
    $('retry-agent').addEventListener('click', retryAgent);
    $('choose-folder').addEventListener('click', chooseFolder);
    $('make-folder').addEventListener('click', makeFolder);
    $('new-folder-name').addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        makeFolder();
      }
    });
    $('submit-application').addEventListener('click', submitApplication);
    $('refresh').addEventListener('click', refreshStatus);
    $('password').addEventListener('input', renderRules);
    $('password-repeat').addEventListener('input', renderRules);
    $('download').addEventListener('click', download);
  }

  async function main() {
    wire();
    try {
      await loadDict(state.lang);
    } catch (e) {
      // Without translations the keys themselves are shown; the flow still works.
    }
    applyTexts();
    await start();
  }

  main().catch(() => {
    show();
    showProblem('internal_error');
  });
})();
