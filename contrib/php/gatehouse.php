<?php
/**
 * PHP behind gatehouse: who the gateway signed in, from the identity headers
 * it sets (and strips from every client request).
 *
 *   require __DIR__ . '/gatehouse.php';
 *   $me = gatehouse_identity();          // null: nobody is signed in
 *   if ($me === null) { ... }            // on a public route, or a login route's 401
 *   echo htmlspecialchars($me['name']);  // 'user', 'email', 'name', 'groups' (a list)
 *   gatehouse_in_group($me, 'staff');
 *
 * An empty or missing X-Remote-User means anonymous. With the assertion key
 * (identity.assertion_key_file, shared with the gateway), the signed
 * X-Gatehouse-Assertion must be valid, unexpired and name the same user, or
 * the request is anonymous: a request that reached PHP without passing the
 * gateway cannot claim a user by sending the header.
 */

/** `X-Remote-User` as PHP spells it in $_SERVER: `HTTP_X_REMOTE_USER`. */
function gatehouse_server_key(string $header): string
{
    return 'HTTP_' . strtoupper(str_replace('-', '_', $header));
}

/** Claims of a valid, unexpired assertion (`BODY.SIG`, base64url), or null. */
function gatehouse_verify_assertion(string $value, string $key, ?int $now = null): ?array
{
    $parts = explode('.', $value, 2);
    if (count($parts) !== 2 || $parts[0] === '') {
        return null;
    }
    [$body, $sig] = $parts;
    $want = rtrim(strtr(base64_encode(hash_hmac('sha256', $body, $key, true)), '+/', '-_'), '=');
    if (!hash_equals($want, $sig)) {
        return null;
    }
    $claims = json_decode((string) base64_decode(strtr($body, '-_', '+/')), true);
    if (!is_array($claims) || ($claims['v'] ?? null) !== 1) {
        return null;
    }
    $exp = $claims['exp'] ?? 0;
    return (is_int($exp) && $exp > ($now ?? time())) ? $claims : null;
}

/**
 * ['user' => ..., 'email' => ..., 'name' => ..., 'groups' => [...]], or null
 * when nobody is signed in. $assertion_key: the key file's contents, to
 * require the signed assertion (default: GATEHOUSE_ASSERTION_KEY_FILE from
 * the environment, if set).
 */
function gatehouse_identity(?string $assertion_key = null, array $headers = []): ?array
{
    $h = $headers + [
        'user' => 'X-Remote-User',
        'email' => 'X-Remote-Email',
        'name' => 'X-Remote-Name',
        'groups' => 'X-Remote-Groups',
        'assertion' => 'X-Gatehouse-Assertion',
    ];
    if ($assertion_key === null) {
        $file = getenv('GATEHOUSE_ASSERTION_KEY_FILE');
        if ($file !== false && $file !== '') {
            $assertion_key = (string) file_get_contents($file);
        }
    }
    $get = fn(string $name): string => trim((string) ($_SERVER[gatehouse_server_key($h[$name])] ?? ''));
    $user = $get('user');
    if ($user === '') {
        return null;
    }
    $groups = array_values(array_filter(array_map('trim', explode(',', $get('groups'))), 'strlen'));
    if ($assertion_key !== null) {
        $claims = gatehouse_verify_assertion($get('assertion'), $assertion_key);
        if ($claims === null || ($claims['user'] ?? null) !== $user) {
            return null;
        }
        // The signed groups are the ones to believe.
        $groups = array_map('strval', $claims['groups'] ?? []);
    }
    return ['user' => $user, 'email' => $get('email'), 'name' => $get('name'), 'groups' => $groups];
}

function gatehouse_in_group(?array $identity, string $group): bool
{
    return $identity !== null && in_array($group, $identity['groups'], true);
}

/** The identity, or a 401 (scripts) and exit: for pages that need a user. */
function gatehouse_require_user(?string $assertion_key = null): array
{
    $me = gatehouse_identity($assertion_key);
    if ($me === null) {
        http_response_code(401);
        header('Content-Type: text/plain');
        echo "Sign in first: /.gatehouse/login\n";
        exit;
    }
    return $me;
}
